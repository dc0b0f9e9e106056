/*  kb_gen.c - the benches' generated knowledge base: a shop with nine product categories, each with
    its own product words, modifiers, problems, attributes and services, plus services every product
    has. A product is brand + modifier + base word; an item is a product and one intent (a service,
    a problem or an attribute), worded by one of several templates per intent kind; its similar
    questions use other templates, shorter product names and colloquial fillers. About twenty items
    share each product, and every intent word is shared by thousands of items: the document
    frequencies of a real product FAQ. Items and queries are pure functions of (seed, number). */
#include "tests/bench/kb_gen.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST(...) { __VA_ARGS__, NULL }
#define S_WORDS 15              //  Words per list at most (lists are NULL-terminated)

typedef struct {
    const char *name;
    const char *bases [S_WORDS + 1];
    const char *modifiers [S_WORDS + 1];
    const char *problems [S_WORDS + 1];
    const char *attributes [S_WORDS + 1];
    const char *services [S_WORDS + 1];     //  Services only this category has
} s_category_t;

static const s_category_t s_categories [] = {
    { "数码产品",
      S_LIST ("手机", "平板", "耳机", "智能手表", "充电宝", "蓝牙音箱", "笔记本电脑", "键盘", "鼠标",
              "路由器", "数据线", "相机", "手环", "显示器", "移动硬盘"),
      S_LIST ("无线", "降噪", "5G", "旗舰", "轻薄", "游戏", "儿童", "商务", "快充", "迷你", "Pro", "Max"),
      S_LIST ("无法开机", "充不进电", "屏幕碎了", "连不上蓝牙", "发热严重", "自动关机", "有杂音", "死机",
              "触屏失灵", "连不上网", "电池不耐用", "按键失灵", "系统卡顿", "没有声音", "指纹识别不了"),
      S_LIST ("保修期", "电池容量", "重量", "尺寸", "续航时间", "充电功率", "屏幕尺寸", "内存大小"),
      S_LIST ("激活", "升级系统", "恢复出厂设置", "连接蓝牙", "绑定账号", "延保") },
    { "家用电器",
      S_LIST ("空调", "冰箱", "洗衣机", "电饭煲", "吹风机", "扫地机器人", "空气净化器", "电热水器",
              "微波炉", "油烟机", "电视", "加湿器", "电风扇", "破壁机", "净水器"),
      S_LIST ("变频", "智能", "静音", "家用", "大容量", "节能", "迷你", "滚筒", "双开门", "一级能效",
              "多功能", "便携"),
      S_LIST ("不制冷", "漏水", "噪音大", "不加热", "显示故障代码", "有异味", "不通电", "遥控器没反应",
              "不排水", "跳闸", "不转了", "温度不准", "指示灯一直闪", "出水很慢", "门关不上"),
      S_LIST ("功率", "能效等级", "容量", "尺寸", "保修期", "耗电量", "噪音", "适用面积"),
      S_LIST ("安装", "清洗", "上门维修", "预约安装", "拆机", "以旧换新") },
    { "服饰内衣",
      S_LIST ("连衣裙", "羽绒服", "牛仔裤", "T恤", "衬衫", "卫衣", "风衣", "西装", "毛衣", "睡衣",
              "运动裤", "外套", "半身裙", "打底衫", "内衣"),
      S_LIST ("纯棉", "修身", "宽松", "加绒", "真丝", "法式", "复古", "学生", "孕妇", "大码", "高腰", "冬季"),
      S_LIST ("起球", "掉色", "开线", "尺码偏小", "尺码偏大", "有色差", "缩水", "有异味", "拉链坏了",
              "掉毛", "有污渍", "少了扣子", "面料起皱", "穿着扎人", "袖子太长"),
      S_LIST ("面料", "尺码表", "洗涤方式", "厚度", "版型", "含绒量", "产地", "弹力"),
      S_LIST ("改尺码", "熨烫", "干洗", "修改裤长", "定制", "试穿") },
    { "鞋靴箱包",
      S_LIST ("运动鞋", "皮鞋", "帆布鞋", "拖鞋", "靴子", "凉鞋", "双肩包", "行李箱", "钱包", "手提包",
              "斜挎包", "登山鞋", "板鞋", "高跟鞋", "腰包"),
      S_LIST ("真皮", "透气", "防水", "轻便", "男士", "女士", "儿童", "休闲", "户外", "复古", "大容量", "防滑"),
      S_LIST ("开胶", "磨脚", "鞋底断了", "有异味", "掉皮", "拉链卡住", "轮子坏了", "尺码不合适", "脱线",
              "褪色", "鞋带断了", "变形", "有划痕", "扣子掉了", "进水"),
      S_LIST ("尺码", "材质", "重量", "容量", "鞋底材质", "尺寸", "保养方法", "产地"),
      S_LIST ("保养", "清洗", "换鞋底", "修补", "定制刻字", "试穿") },
    { "美妆个护",
      S_LIST ("口红", "面膜", "粉底液", "洗面奶", "防晒霜", "精华液", "香水", "眼霜", "卸妆水", "洗发水",
              "身体乳", "护手霜", "眉笔", "爽肤水", "面霜"),
      S_LIST ("保湿", "美白", "控油", "敏感肌", "持久", "清爽", "滋润", "修护", "抗老", "哑光", "男士", "旅行装"),
      S_LIST ("过敏", "长痘", "泛红", "搓泥", "脱妆", "闷痘", "刺痛", "有异味", "变质", "漏液", "拔干",
              "卡粉", "颜色不对", "瓶子破了", "泵头按不出来"),
      S_LIST ("保质期", "成分", "容量", "适用肤质", "色号", "生产日期", "使用方法", "产地"),
      S_LIST ("验真伪", "试用", "查批号", "开封", "小样申领", "搭配使用") },
    { "食品生鲜",
      S_LIST ("牛奶", "坚果", "茶叶", "咖啡", "大米", "蜂蜜", "饼干", "巧克力", "牛肉干", "酸奶", "水果",
              "橄榄油", "燕麦片", "月饼", "粽子"),
      S_LIST ("有机", "进口", "低糖", "无添加", "原味", "礼盒装", "家庭装", "高钙", "全脂", "即食", "新鲜", "散装"),
      S_LIST ("过期了", "发霉了", "有虫", "包装漏气", "味道不对", "变质了", "化了", "分量不足", "压碎了",
              "结块", "胀袋", "有异物", "漏了", "口感发苦", "颜色发黑"),
      S_LIST ("保质期", "配料表", "生产日期", "储存方法", "净含量", "产地", "热量", "营养成分"),
      S_LIST ("冷藏", "冷链配送", "定期购", "开发票报销", "礼品包装", "试吃") },
    { "家居家装",
      S_LIST ("床垫", "沙发", "枕头", "四件套", "窗帘", "收纳盒", "餐桌", "衣柜", "台灯", "地毯", "书桌",
              "椅子", "被子", "床", "置物架"),
      S_LIST ("乳胶", "实木", "北欧", "简约", "记忆棉", "加厚", "可折叠", "儿童", "皮质", "布艺", "纯棉", "升降"),
      S_LIST ("有甲醛味", "塌陷", "异响", "开裂", "掉漆", "少零件", "安装不上", "晃动", "起球", "发霉",
              "尺寸不对", "螺丝孔对不上", "褪色", "变形", "抽屉拉不开"),
      S_LIST ("尺寸", "材质", "承重", "环保等级", "颜色", "填充物", "软硬度", "安装方式"),
      S_LIST ("安装", "送货上楼", "拆旧", "预约送货", "清洗", "定制尺寸") },
    { "母婴用品",
      S_LIST ("奶粉", "纸尿裤", "婴儿车", "奶瓶", "安全座椅", "湿巾", "辅食", "婴儿床", "玩具", "儿童牙刷",
              "吸奶器", "口水巾", "学步车", "背带", "爬行垫"),
      S_LIST ("新生儿", "有机", "防胀气", "轻便", "可折叠", "进口", "超薄", "婴幼儿", "益智", "硅胶", "纯棉", "大号"),
      S_LIST ("漏尿", "红屁股", "宝宝不爱喝", "轮子卡住", "有异味", "过敏", "奶嘴破了", "刹车失灵", "扣带松了",
              "掉零件", "拉肚子", "吸力不够", "胀气", "起疹子", "配件不全"),
      S_LIST ("适用年龄", "段数", "尺码", "材质", "重量", "保质期", "承重", "奶源地"),
      S_LIST ("验真伪", "冲泡", "消毒", "安装", "折叠", "试用装申领") },
    { "运动户外",
      S_LIST ("跑步机", "瑜伽垫", "哑铃", "动感单车", "羽毛球拍", "篮球", "泳镜", "帐篷", "登山杖", "健身手套",
              "跳绳", "护膝", "滑板", "自行车", "睡袋"),
      S_LIST ("家用", "专业", "可折叠", "加厚", "防滑", "碳纤维", "儿童", "静音", "户外", "轻量", "防水", "入门"),
      S_LIST ("异响", "跑带打滑", "漏气", "断线", "生锈", "开胶", "起皮", "螺丝松了", "屏幕不亮", "刹车不灵",
              "拉链坏了", "变形", "磨损", "漏水", "链条掉了"),
      S_LIST ("承重", "尺寸", "重量", "材质", "功率", "适用人群", "保修期", "折叠尺寸"),
      S_LIST ("安装", "调试", "上门安装", "保养", "组装", "换配件") },
};
#define S_CATEGORIES ((int) (sizeof s_categories / sizeof s_categories [0]))

//  Services every product has
static const char *s_services [] = {
    "退货", "换货", "退款", "维修", "保修", "开发票", "发货", "查物流", "修改地址", "取消订单",
    "使用优惠券", "分期付款", "货到付款", "评价", "申请价保", "七天无理由退货", "补发", "预售",
    "指定快递", "送货上门", "加急配送", "批量采购", "退差价", "催发货", "开增值税发票", NULL
};
static const char *s_brands [] = {
    "星辰", "极光", "云朵", "小熊", "北极狐", "青柠", "蓝鲸", "橙子", "松果", "麦田", "白桦", "山茶",
    "海豚", "萤火", "木棉", "银杏", "雪松", "知更鸟", "向日葵", "石榴", NULL
};

//  Question templates per intent kind: %P product, %B base word, %I intent word
static const char *s_service_templates [] = {
    "%P怎么%I？", "%P可以%I吗？", "%P%I的流程是什么？", "我买的%P想%I，怎么操作？", "%P支持%I吗？",
    "%P%I需要什么条件？", "%P在哪里申请%I？", "%P%I要多久？", "%P%I收费吗？", "刚买的%P能不能%I",
    "请问%P怎么办理%I", "%I的话%P要怎么弄", "%P%I有什么要求", "想给%P%I", "%P能%I吗", NULL
};
static const char *s_problem_templates [] = {
    "%P%I怎么办？", "我的%P%I，怎么处理", "%P%I能退换吗？", "为什么%P会%I？", "刚收到的%P就%I",
    "%P老是%I", "%P%I是质量问题吗？", "%P%I可以保修吗", "%P%I，找谁处理", "新买的%P%I怎么解决",
    "%P出现%I的情况", "%P%I，还能用吗", NULL
};
static const char *s_attribute_templates [] = {
    "%P的%I是多少？", "%P%I是多少", "想了解一下%P的%I", "%P的%I怎么样？", "%P的%I有说明吗",
    "请问%P的%I", "%P的%I在哪里看", "能告诉我%P的%I吗", "%P%I大概多少", "%P的%I是什么样的", NULL
};
static const char **s_templates [] = { s_service_templates, s_problem_templates, s_attribute_templates };

static const char *s_answer_templates [3][3] = {
    {   "%P支持%I服务。请在App「我的-订单」中找到该订单，点击「%I」，按页面提示填写信息并提交，审核通过后%N个工作日内为您处理完毕。如有疑问可联系在线客服。",
        "%I说明：%P自签收之日起%D天内可申请%I，请保持商品及配件完整。提交申请后我们会在%N个工作日内审核，结果将通过短信通知您。",
        "您好，%P的%I可以在订单详情页直接办理，也可以拨打客服热线400-800-%N%N%N%N转人工。办理时请准备好订单号和收货手机号，%D天内均可受理。" },
    {   "很抱歉%P给您带来不便。出现%I的情况，建议您先对照说明书检查一下；如果问题依旧，请拍摄视频或照片，在「申请售后」中选择「质量问题」提交，我们核实后为您免费维修或换新，往返运费由我们承担。",
        "%P%I多为个别现象。签收%D天内可直接申请退换货，超过%D天在保修期内可免费维修。请在App中提交售后申请并上传照片，客服会在%N个工作日内联系您。",
        "关于%P%I：请先确认使用方式是否正确。如确认是商品问题，我们支持%D天内无理由退换，已过退换期的可享受%N年质保服务。" },
    {   "%P的%I请以商品详情页「规格参数」为准，不同批次可能略有差异。如需更详细的信息，可以联系在线客服为您查询。",
        "%P的%I在商品详情页和包装说明上都有标注。常见问题：%B的%I一般以实物为准，如有疑问请拍照咨询客服。",
        "您好，%P的%I可在详情页「参数」一栏查看；如果您是第一次购买%B，客服可以根据您的需求为您推荐合适的款式。" },
};

static const char *s_fillers [] = { "你好，", "请问", "在吗，", "麻烦问下", "亲，", "客服你好，", "问一下", NULL };
static const char *s_particles [] = { "啊", "呢", "呀", "哦", "？？", "!", NULL };
static const char *s_typos = "的得地在再做作坐吗马嘛买卖麦到道倒";  //  Common confusions
static const char *s_elsewhere [] = {
    "今天天气怎么样", "帮我写首诗", "给我讲个笑话", "附近有什么好吃的", "股票明天会涨吗",
    "怎么学好英语", "推荐一部电影", "现在几点了", "红烧肉怎么做", "周末去哪里玩", NULL
};

//  splitmix64: a stateless mix, so every item and query is a function of (seed, number)
static uint64_t
s_mix (uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

typedef struct {
    uint64_t state;
} s_rng_t;

static uint32_t
s_next (s_rng_t *rng, uint32_t bound)
{
    rng->state = s_mix (rng->state);
    return (uint32_t) ((rng->state >> 32) % bound);
}

static int
s_count (const char *const *list)
{
    int n = 0;
    while (list [n])
        n++;
    return n;
}

//  One item's meaning
typedef struct {
    const s_category_t *category;
    const char *brand, *modifier, *base;
    int kind;                   //  0 service, 1 problem, 2 attribute
    const char *intent;
    int number;
} s_item_t;

//  The distinct intents a product of `category` has: shared services, then its own
static int
s_intent_count (const s_category_t *category)
{
    return s_count (s_services) + s_count (category->services) + s_count (category->problems)
         + s_count (category->attributes);
}

//  Products: a fixed pseudo-random walk over brand x modifier x base x category, about one per
//  twenty items; items: a walk over product x intent. Both are bijections (multiplier coprime).
static uint64_t
s_coprime_step (uint64_t space, uint64_t seed)
{
    uint64_t step = (s_mix (seed) % space) | 1;
    while (1) {
        uint64_t a = step, b = space;
        while (b) {
            uint64_t t = a % b;
            a = b;
            b = t;
        }
        if (a == 1)
            return step;
        step += 2;
    }
}

#define S_PRODUCT_SPACE (20 * 12 * 15 * 9)
#define S_INTENTS 54            //  25 shared services + 6 own + 15 problems + 8 attributes

static void
s_item (int number, int item_count, uint64_t seed, s_item_t *item)
{
    uint64_t products = item_count / 20 + 50;
    if (products > S_PRODUCT_SPACE)
        products = S_PRODUCT_SPACE;
    uint64_t space = products * S_INTENTS;
    uint64_t tuple = ((uint64_t) number * s_coprime_step (space, seed)) % space;
    uint64_t product = tuple / S_INTENTS, intent = tuple % S_INTENTS;
    uint64_t combo = (product * s_coprime_step (S_PRODUCT_SPACE, seed + 1)
                     + s_mix (seed) % S_PRODUCT_SPACE) % S_PRODUCT_SPACE;
    item->category = &s_categories [combo % S_CATEGORIES];
    combo /= S_CATEGORIES;
    item->base = item->category->bases [combo % 15];
    combo /= 15;
    item->modifier = item->category->modifiers [combo % 12];
    combo /= 12;
    item->brand = s_brands [combo % 20];
    int services = s_count (s_services), own = s_count (item->category->services);
    int problems = s_count (item->category->problems);
    if ((int) intent < services)
        item->kind = 0, item->intent = s_services [intent];
    else
    if ((int) intent < services + own)
        item->kind = 0, item->intent = item->category->services [intent - services];
    else
    if ((int) intent < services + own + problems)
        item->kind = 1, item->intent = item->category->problems [intent - services - own];
    else
        item->kind = 2,
        item->intent = item->category->attributes [intent - services - own - problems];
    item->number = number;
}

//  A growing string
typedef struct {
    char data [2048];
    size_t len;
} s_text_t;

static void
s_append (s_text_t *text, const char *s)
{
    size_t n = strlen (s);
    if (text->len + n < sizeof text->data) {
        memcpy (text->data + text->len, s, n + 1);
        text->len += n;
    }
}

//  How a text names the product: 0 brand + modifier + base, 1 brand + base, 2 modifier + base,
//  3 "这款" + base
static void
s_product (s_text_t *text, const s_item_t *item, int form)
{
    if (form == 0 || form == 1)
        s_append (text, item->brand);
    if (form == 0 || form == 2)
        s_append (text, item->modifier);
    if (form == 3)
        s_append (text, "这款");
    s_append (text, item->base);
}

//  Expands a template: %P product (in `form`), %B base, %I intent, %N and %D small numbers
static void
s_expand (s_text_t *text, const char *template, const s_item_t *item, int form, s_rng_t *rng)
{
    text->len = 0;
    text->data [0] = 0;
    for (const char *p = template; *p; p++) {
        if (*p == '%' && p [1]) {
            char number [16];
            p++;
            if (*p == 'P')
                s_product (text, item, form);
            else
            if (*p == 'B')
                s_append (text, item->base);
            else
            if (*p == 'I')
                s_append (text, item->intent);
            else {
                unsigned n = *p == 'D' ? 7 + s_next (rng, 24) : 1 + s_next (rng, 9);
                snprintf (number, sizeof number, "%u", n);
                s_append (text, number);
            }
        }
        else {
            char c [2] = { *p, 0 };
            s_append (text, c);
        }
    }
}

//  Writes `s` as a JSON string
static void
s_json_string (FILE *out, const char *s)
{
    fputc ('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc ('\\', out);
        fputc (*s, out);
    }
    fputc ('"', out);
}

int
kf_kb_gen_items (FILE *out, int count, uint64_t seed)
{
    if (count < 0 || (uint64_t) count > (uint64_t) S_PRODUCT_SPACE * S_INTENTS / 2)
        return -1;
    for (int c = 0; c < S_CATEGORIES; c++)
        if (s_intent_count (&s_categories [c]) != S_INTENTS
        ||  s_count (s_categories [c].bases) != 15 || s_count (s_categories [c].modifiers) != 12)
            return -1;          //  The word lists and the walk over them disagree
    for (int number = 0; number < count; number++) {
        s_item_t item;
        s_item (number, count, seed, &item);
        s_rng_t rng = { s_mix (seed ^ (0x5EED0000ULL + number)) };
        const char **templates = s_templates [item.kind];
        int template_count = s_count (templates);
        int first = s_next (&rng, template_count);
        s_text_t text;
        fprintf (out, "{\"external_id\": \"gen-%07d\", \"category\": \"%s/%s\", \"question\": ",
                 number + 1, item.category->name, item.base);
        s_expand (&text, templates [first], &item, 0, &rng);
        s_json_string (out, text.data);
        fprintf (out, ", \"similar_questions\": [");
        int similar = 3 + s_next (&rng, 6);
        for (int s = 0; s < similar; s++) {
            //  Other templates (8 similar at most, 10 templates at least: all distinct); the
            //  product sometimes named shorter; sometimes a filler first
            int t = (first + 1 + s) % template_count;
            int form = s_next (&rng, 10);
            form = form < 6 ? 0 : form < 8 ? 1 : form < 9 ? 2 : 3;
            s_text_t filler = { .len = 0 };
            filler.data [0] = 0;
            if (s_next (&rng, 5) == 0)
                s_append (&filler, s_fillers [s_next (&rng, s_count (s_fillers))]);
            s_expand (&text, templates [t], &item, form, &rng);
            s_append (&filler, text.data);
            fprintf (out, s ? ", " : "");
            s_json_string (out, filler.data);
        }
        fprintf (out, "], \"answer\": ");
        s_expand (&text, s_answer_templates [item.kind][s_next (&rng, 3)], &item, 0, &rng);
        s_json_string (out, text.data);
        fprintf (out, ", \"keywords\": [");
        s_json_string (out, item.base);
        fprintf (out, ", ");
        s_json_string (out, item.intent);
        fprintf (out, ", ");
        s_json_string (out, item.brand);
        fprintf (out, "]}\n");
    }
    return 0;
}

//  Replaces one CJK character of `text` (after the first) by a common confusion
static void
s_typo (s_text_t *text, s_rng_t *rng)
{
    size_t starts [512];
    int count = 0;
    for (size_t i = 3; i + 3 <= text->len && count < 512; i++)
        if (((unsigned char) text->data [i] & 0xF0) == 0xE0)
            starts [count++] = i;
    if (count == 0)
        return;
    size_t at = starts [s_next (rng, count)];
    int typo = s_next (rng, (int) strlen (s_typos) / 3);
    memcpy (text->data + at, s_typos + typo * 3, 3);
}

void
kf_kb_gen_queries (FILE *out, int item_count, int count, uint64_t seed)
{
    for (int number = 0; number < count; number++) {
        s_rng_t rng = { s_mix (seed ^ (0xA5C0000000ULL + number)) };
        s_text_t query = { .len = 0 };
        query.data [0] = 0;
        if (item_count == 0 || s_next (&rng, 20) == 0) {
            s_append (&query, s_elsewhere [s_next (&rng, s_count (s_elsewhere))]);
            fprintf (out, "{\"query\": ");
            s_json_string (out, query.data);
            fprintf (out, ", \"expect\": null}\n");
            continue;
        }
        int target = s_next (&rng, item_count);
        s_item_t item;
        s_item (target, item_count, seed, &item);
        const char **templates = s_templates [item.kind];
        s_text_t text;
        int form = s_next (&rng, 10);
        form = form < 7 ? 0 : form < 9 ? 1 : 2;
        s_expand (&text, templates [s_next (&rng, s_count (templates))], &item, form, &rng);
        if (s_next (&rng, 4) == 0)
            s_append (&query, s_fillers [s_next (&rng, s_count (s_fillers))]);
        s_append (&query, text.data);
        if (s_next (&rng, 5) == 0)
            s_append (&query, s_particles [s_next (&rng, s_count (s_particles))]);
        if (s_next (&rng, 10) == 0)
            s_typo (&query, &rng);
        fprintf (out, "{\"query\": ");
        s_json_string (out, query.data);
        fprintf (out, ", \"expect\": \"gen-%07d\"}\n", target + 1);
    }
}
