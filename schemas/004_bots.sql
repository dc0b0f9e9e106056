-- 004_bots.sql - bot profiles for the chat window and the inputs a bot accepts (issue 3).

CREATE TABLE bots (
    bot_id      TEXT PRIMARY KEY,
    profile     TEXT NOT NULL,          -- JSON object: name, avatar_url, description, welcome,
                                        -- common_questions, switches
    parameters  TEXT NOT NULL DEFAULT '[]',     -- JSON array of input definitions
    updated_at  INTEGER NOT NULL
);

INSERT INTO bots (bot_id, profile, parameters, updated_at) VALUES ('default',
'{"name":"小快","avatar_url":"","description":"本店智能客服，7×24 小时为您解答订单、物流、退换货、发票、会员和优惠券等问题。","welcome":"您好，我是智能客服小快，请问有什么可以帮您？您可以直接输入问题，或点击下方的常见问题。","common_questions":["怎么申请退货？","退款多久到账？","发票怎么开？","运费怎么算？","怎么修改收货地址？"],"switches":{"suggestions":true,"satisfaction_survey":true,"predictive_input":true}}',
'[{"name":"order_no","label":"订单号","type":"text","required":false,"default":"","max_length":32}]',
0);
