/*  emotion_lexicon.h - the built-in lexicon of common/emotion.c (included there only).
    Entries are folded text: simplified, latin lower case, half-width. Matching is longest first, so
    a longer phrase overrides its parts; weight 0 BLOCK entries keep a neutral phrase (差价, 服务,
    不知道) from being read as a cue. For INTENS entries the weight is the multiplier. */

typedef enum {
    S_NEG = 0,      //  Upset word; flips to a small positive when negated if S_FLIP
    S_POS,          //  Positive word; negated it becomes -1.2x
    S_POLITE,       //  Courtesy; halved in a question, negation ignored
    S_PROF,         //  Profanity: caps the score at 0.15
    S_THREAT,       //  Threat to escalate: caps the score at 0.20
    S_BLOCK,        //  Neutral phrase, consumes its characters
    S_NEGATOR,      //  Negates the next sentiment word within 3 characters
    S_INTENS,       //  Multiplies the next sentiment word
    S_WAIT          //  等了: with a time unit after it, a waiting cue
} s_kind_t;

#define S_FLIP 1
#define S_TOPIC 2   //  Names a subject people ask about calmly (投诉, 起诉, 假货): weak in a question

typedef struct {
    const char *text;
    float weight;
    unsigned char kind;
    unsigned char flags;
} s_entry_t;

static const s_entry_t s_lexicon [] = {
    //  Neutral phrases that contain cue characters
    {"不满足", 0, S_BLOCK, 0}, {"不满十八", 0, S_BLOCK, 0}, {"不满一年", 0, S_BLOCK, 0},
    {"不满一个月", 0, S_BLOCK, 0}, {"不满意度", 0, S_BLOCK, 0}, {"工商户", 0, S_BLOCK, 0},
    {"工商银行", 0, S_BLOCK, 0}, {"工商注册", 0, S_BLOCK, 0}, {"工商登记", 0, S_BLOCK, 0},
    {"垃圾桶", 0, S_BLOCK, 0}, {"垃圾分类", 0, S_BLOCK, 0}, {"垃圾袋", 0, S_BLOCK, 0},
    {"生活垃圾", 0, S_BLOCK, 0}, {"装修垃圾", 0, S_BLOCK, 0}, {"建筑垃圾", 0, S_BLOCK, 0},
    {"厨余垃圾", 0, S_BLOCK, 0}, {"大件垃圾", 0, S_BLOCK, 0}, {"垃圾站", 0, S_BLOCK, 0},
    {"垃圾房", 0, S_BLOCK, 0}, {"垃圾清运", 0, S_BLOCK, 0}, {"扔垃圾", 0, S_BLOCK, 0},
    {"倒垃圾", 0, S_BLOCK, 0}, {"丢垃圾", 0, S_BLOCK, 0}, {"垃圾短信", 0, S_BLOCK, 0},
    {"垃圾邮件", 0, S_BLOCK, 0}, {"垃圾电话", 0, S_BLOCK, 0}, {"垃圾费", 0, S_BLOCK, 0},
    {"骚扰电话", 0, S_BLOCK, 0}, {"诈骗电话", 0, S_BLOCK, 0}, {"防诈骗", 0, S_BLOCK, 0},
    {"反诈", 0, S_BLOCK, 0}, {"律师函", -2.5f, S_THREAT, S_TOPIC},
    {"诈骗短信", 0, S_BLOCK, 0}, {"诈骗", -0.8f, S_NEG, S_TOPIC},
    //  Trash said of the business, not of the trash: strong
    {"垃圾服务", -2.2f, S_NEG, 0}, {"垃圾客服", -2.2f, S_NEG, 0}, {"垃圾公司", -2.2f, S_NEG, 0},
    {"垃圾银行", -2.2f, S_NEG, 0}, {"垃圾物业", -2.2f, S_NEG, 0}, {"垃圾系统", -2.2f, S_NEG, 0},
    {"垃圾app", -2.2f, S_NEG, 0}, {"垃圾宽带", -2.2f, S_NEG, 0}, {"垃圾软件", -2.2f, S_NEG, 0},
    {"太垃圾", -2.2f, S_NEG, 0}, {"真垃圾", -2.2f, S_NEG, 0},
    {"报警器", 0, S_BLOCK, 0}, {"有病人", 0, S_BLOCK, 0}, {"病人", 0, S_BLOCK, 0},
    {"爸妈", 0, S_BLOCK, 0}, {"我妈", 0, S_BLOCK, 0},
    {"妈妈", 0, S_BLOCK, 0}, {"老妈", 0, S_BLOCK, 0}, {"垃圾堆", 0, S_BLOCK, 0},
    {"其他垃圾", 0, S_BLOCK, 0}, {"有害垃圾", 0, S_BLOCK, 0}, {"可回收", 0, S_BLOCK, 0},
    {"干垃圾", 0, S_BLOCK, 0}, {"湿垃圾", 0, S_BLOCK, 0}, {"垃圾处理", 0, S_BLOCK, 0},
    //  Anger at the business in so many words: rhetorical questions and charges
    {"气炸", -2.0f, S_NEG, 0}, {"黑店", -2.0f, S_NEG, 0}, {"心太黑", -1.8f, S_NEG, 0},
    {"黑心", -2.0f, S_NEG, 0}, {"抢钱", -2.0f, S_NEG, 0}, {"偷偷", -1.0f, S_NEG, 0},
    {"有毛病", -1.8f, S_NEG, 0}, {"眼瞎", -2.0f, S_NEG, 0}, {"是死的", -2.0f, S_NEG, 0},
    {"干什么吃的", -2.5f, S_NEG, 0}, {"干啥吃的", -2.5f, S_NEG, 0}, {"负得起责", -1.8f, S_NEG, 0},
    {"怎么好意思", -1.8f, S_NEG, 0}, {"折腾人", -1.8f, S_NEG, 0}, {"奇葩", -1.2f, S_NEG, 0},
    {"三番五次", -1.5f, S_NEG, 0}, {"说了多少遍", -1.8f, S_NEG, 0}, {"打不通", -1.2f, S_NEG, 0},
    {"打不进去", -1.2f, S_NEG, 0}, {"死活", -1.0f, S_NEG, 0}, {"莫名其妙", -1.2f, S_NEG, 0},
    {"怎么搞的", -1.5f, S_NEG, 0}, {"搞什么", -1.5f, S_NEG, 0}, {"什么效率", -1.8f, S_NEG, 0},
    {"这破", -1.8f, S_NEG, 0}, {"管不管", -1.5f, S_NEG, 0}, {"丢死人", -1.5f, S_NEG, 0},
    {"冻死", -1.2f, S_NEG, 0}, {"要命", -1.0f, S_NEG, 0}, {"靠点谱", -1.5f, S_NEG, 0},
    {"想吞", -1.8f, S_NEG, 0}, {"做生意的", -1.0f, S_NEG, 0}, {"耽误", -1.0f, S_NEG, 0},
    {"差价", 0, S_BLOCK, 0}, {"差不多", 0, S_BLOCK, 0}, {"差点", 0, S_BLOCK, 0}, {"出差", 0, S_BLOCK, 0},
    {"相差", 0, S_BLOCK, 0}, {"服务", 0, S_BLOCK, 0}, {"不知道", 0, S_BLOCK, 0}, {"不用了", 0, S_BLOCK, 0},
    {"不过", 0, S_BLOCK, 0}, {"好像", 0, S_BLOCK, 0}, {"好多", 0, S_BLOCK, 0}, {"好几", 0, S_BLOCK, 0},
    {"问题", 0, S_BLOCK, 0}, {"有个问题", 0, S_BLOCK, 0}, {"最近", 0, S_BLOCK, 0}, {"最后", 0, S_BLOCK, 0},
    {"最多", 0, S_BLOCK, 0}, {"最晚", 0, S_BLOCK, 0}, {"最快", 0, S_BLOCK, 0}, {"草莓", 0, S_BLOCK, 0},
    {"可靠", 0.5f, S_POS, 0}, {"不一定", 0, S_BLOCK, 0}, {"不同", 0, S_BLOCK, 0}, {"不然", 0, S_BLOCK, 0},
    {"好了", 0, S_BLOCK, 0}, {"修好", 0, S_BLOCK, 0}, {"很久", -0.5f, S_NEG, 0}, {"别的", 0, S_BLOCK, 0},
    {"没收到", -0.4f, S_NEG, 0}, {"没到", -0.3f, S_NEG, 0}, {"没有收到", -0.4f, S_NEG, 0},
    {"没人", -1.0f, S_NEG, 0}, {"有没有", 0, S_BLOCK, 0}, {"是不是", 0, S_BLOCK, 0},
    {"可不可以", 0, S_BLOCK, 0}, {"能不能", -0.2f, S_NEG, 0}, {"不能", 0, S_BLOCK, 0},
    {"真的吗", 0, S_BLOCK, 0}, {"好吗", 0, S_BLOCK, 0}, {"好评返现", 0, S_BLOCK, 0},
    {"滚动", 0, S_BLOCK, 0}, {"滚筒", 0, S_BLOCK, 0}, {"滚轮", 0, S_BLOCK, 0}, {"充值", 0, S_BLOCK, 0},
    {"值班", 0, S_BLOCK, 0}, {"差异", 0, S_BLOCK, 0}, {"误差", 0, S_BLOCK, 0}, {"申请", 0, S_BLOCK, 0},
    {"邀请", 0, S_BLOCK, 0}, {"慢慢", 0, S_BLOCK, 0}, {"今天", 0, S_BLOCK, 0}, {"明天", 0, S_BLOCK, 0},
    {"昨天", 0, S_BLOCK, 0}, {"前天", 0, S_BLOCK, 0}, {"后天", 0, S_BLOCK, 0}, {"聊天", 0, S_BLOCK, 0},
    {"当天", 0, S_BLOCK, 0}, {"每天", 0, S_BLOCK, 0}, {"白天", 0, S_BLOCK, 0}, {"超时", 0, S_BLOCK, 0},

    //  Negators and intensifiers
    {"不", 0, S_NEGATOR, 0}, {"没", 0, S_NEGATOR, 0}, {"没有", 0, S_NEGATOR, 0}, {"别", 0, S_NEGATOR, 0},
    {"未", 0, S_NEGATOR, 0}, {"不是", 0, S_NEGATOR, 0}, {"不太", 0, S_NEGATOR, 0}, {"不够", 0, S_NEGATOR, 0},
    {"不怎么", 0, S_NEGATOR, 0}, {"毫不", 0, S_NEGATOR, 0}, {"并不", 0, S_NEGATOR, 0}, {"从不", 0, S_NEGATOR, 0},
    {"太", 1.5f, S_INTENS, 0}, {"非常", 1.5f, S_INTENS, 0}, {"特别", 1.4f, S_INTENS, 0},
    {"真的", 1.3f, S_INTENS, 0}, {"真是", 1.3f, S_INTENS, 0}, {"真", 1.3f, S_INTENS, 0},
    {"简直", 1.6f, S_INTENS, 0}, {"超级", 1.6f, S_INTENS, 0}, {"超", 1.4f, S_INTENS, 0},
    {"很", 1.2f, S_INTENS, 0}, {"好", 1.2f, S_INTENS, 0}, {"挺", 1.1f, S_INTENS, 0},
    {"极其", 1.6f, S_INTENS, 0}, {"十分", 1.4f, S_INTENS, 0}, {"相当", 1.3f, S_INTENS, 0},
    {"巨", 1.5f, S_INTENS, 0}, {"贼", 1.4f, S_INTENS, 0}, {"最", 1.4f, S_INTENS, 0},
    {"一点都", 1.4f, S_INTENS, 0}, {"一点也", 1.4f, S_INTENS, 0}, {"实在", 1.3f, S_INTENS, 0},
    {"越来越", 1.3f, S_INTENS, 0}, {"这么", 1.2f, S_INTENS, 0}, {"那么", 1.1f, S_INTENS, 0},
    {"太让人", 1.5f, S_INTENS, 0}, {"让人", 1.0f, S_INTENS, 0}, {"令人", 1.0f, S_INTENS, 0},

    //  Profanity, masked forms included
    {"他妈的", -3, S_PROF, 0}, {"他妈", -3, S_PROF, 0}, {"妈的", -3, S_PROF, 0}, {"特么", -3, S_PROF, 0},
    {"tmd", -3, S_PROF, 0}, {"md", -3, S_PROF, 0}, {"nmd", -3, S_PROF, 0},
    {"sb", -3, S_PROF, 0}, {"傻逼", -3, S_PROF, 0}, {"傻b", -3, S_PROF, 0}, {"煞笔", -3, S_PROF, 0},
    {"傻x", -3, S_PROF, 0}, {"傻叉", -3, S_PROF, 0}, {"卧槽", -3, S_PROF, 0}, {"我操", -3, S_PROF, 0},
    {"我草", -3, S_PROF, 0}, {"操你", -3, S_PROF, 0}, {"艹", -3, S_PROF, 0}, {"尼玛", -3, S_PROF, 0},
    {"你妈", -3, S_PROF, 0}, {"nmsl", -3, S_PROF, 0}, {"cnm", -3, S_PROF, 0}, {"mlgb", -3, S_PROF, 0},
    {"nnd", -3, S_PROF, 0}, {"妈蛋", -3, S_PROF, 0}, {"狗屎", -1.0f, S_NEG, S_TOPIC}, {"脑残", -3, S_PROF, 0},
    {"智障", -3, S_PROF, 0}, {"白痴", -3, S_PROF, 0}, {"弱智", -3, S_PROF, 0}, {"混蛋", -3, S_PROF, 0},
    {"王八蛋", -3, S_PROF, 0}, {"去死", -3, S_PROF, 0}, {"我靠", -3, S_PROF, 0}, {"日了狗", -3, S_PROF, 0},
    {"滚", -3, S_PROF, 0}, {"fuck", -3, S_PROF, 0}, {"fucking", -3, S_PROF, 0}, {"shit", -3, S_PROF, 0},
    {"wtf", -3, S_PROF, 0}, {"f**k", -3, S_PROF, 0}, {"damn", -3, S_PROF, 0},

    //  Threats to escalate
    {"12315", -2.5f, S_THREAT, S_TOPIC}, {"12345", -2.0f, S_THREAT, S_TOPIC},
    {"曝光", -2.5f, S_THREAT, S_TOPIC}, {"差评", -2.0f, S_THREAT, S_TOPIC},
    {"报警", -2.5f, S_THREAT, S_TOPIC}, {"律师", -2.5f, S_THREAT, S_TOPIC}, {"起诉", -2.5f, S_THREAT, S_TOPIC},
    {"法院", -2.5f, S_THREAT, S_TOPIC}, {"消协", -2.5f, S_THREAT, S_TOPIC}, {"消费者协会", -2.5f, S_THREAT, S_TOPIC},
    {"工商", -2.0f, S_THREAT, S_TOPIC}, {"市场监管", -2.0f, S_THREAT, S_TOPIC}, {"黑猫", -2.0f, S_THREAT, S_TOPIC},
    {"媒体", -2.0f, S_THREAT, 0}, {"维权", -2.0f, S_THREAT, S_TOPIC}, {"告你们", -2.5f, S_THREAT, 0},

    //  Upset words
    {"垃圾", -1.5f, S_NEG, S_TOPIC}, {"骗子", -2.5f, S_NEG, 0}, {"骗人", -2.0f, S_NEG, 0}, {"骗", -1.5f, S_NEG, S_TOPIC},
    {"欺诈", -2.5f, S_NEG, 0}, {"坑爹", -2.0f, S_NEG, 0}, {"坑人", -1.8f, S_NEG, 0},
    {"坑", -1.3f, S_NEG, 0}, {"差劲", -1.8f, S_NEG, S_FLIP}, {"差", -1.2f, S_NEG, S_FLIP},
    {"太差", -1.8f, S_NEG, 0}, {"气死", -2.0f, S_NEG, 0}, {"生气", -1.5f, S_NEG, 0}, {"气人", -1.5f, S_NEG, 0},
    {"无语", -1.5f, S_NEG, 0}, {"失望", -1.5f, S_NEG, 0}, {"投诉", -1.6f, S_NEG, S_TOPIC}, {"退钱", -1.2f, S_NEG, S_TOPIC},
    {"还钱", -1.2f, S_NEG, 0}, {"赔钱", -1.2f, S_NEG, 0}, {"赔偿", -1.0f, S_NEG, 0}, {"什么破", -1.8f, S_NEG, 0},
    {"破玩意", -2.0f, S_NEG, 0}, {"破东西", -2.0f, S_NEG, 0}, {"烂", -1.2f, S_NEG, 0}, {"恶心", -1.8f, S_NEG, 0},
    {"离谱", -1.5f, S_NEG, 0}, {"过分", -1.5f, S_NEG, 0}, {"忍无可忍", -2.5f, S_NEG, 0},
    {"受够", -2.0f, S_NEG, 0}, {"崩溃", -1.5f, S_NEG, 0}, {"烦", -1.0f, S_NEG, 0}, {"郁闷", -1.0f, S_NEG, 0},
    {"着急", -0.6f, S_NEG, 0}, {"急死", -1.0f, S_NEG, 0}, {"慢", -0.8f, S_NEG, S_FLIP},
    {"不行", -1.0f, S_NEG, 0}, {"不好", -1.0f, S_NEG, 0}, {"不好用", -1.2f, S_NEG, 0},
    {"不太好", -0.8f, S_NEG, 0}, {"不够好", -0.9f, S_NEG, 0}, {"不满", -1.5f, S_NEG, 0},
    {"不满意", -1.3f, S_NEG, 0}, {"敷衍", -1.5f, S_NEG, 0}, {"态度恶劣", -2.0f, S_NEG, 0},
    {"恶劣", -1.8f, S_NEG, 0}, {"什么态度", -1.8f, S_NEG, 0}, {"踢皮球", -1.5f, S_NEG, 0},
    {"推卸", -1.3f, S_NEG, 0}, {"不理", -1.2f, S_NEG, 0}, {"不回", -1.0f, S_NEG, 0}, {"耍我", -1.8f, S_NEG, 0},
    {"糊弄", -1.5f, S_NEG, 0}, {"忽悠", -1.5f, S_NEG, 0}, {"黑心", -2.0f, S_NEG, 0}, {"奸商", -2.5f, S_NEG, 0},
    {"良心呢", -1.5f, S_NEG, 0}, {"上当", -1.5f, S_NEG, 0}, {"后悔", -1.3f, S_NEG, 0}, {"倒霉", -1.0f, S_NEG, 0},
    {"心累", -1.5f, S_NEG, 0}, {"服了", -1.2f, S_NEG, 0}, {"醉了", -1.2f, S_NEG, 0}, {"呵呵", -1.2f, S_NEG, 0},
    {"无奈", -1.0f, S_NEG, 0}, {"难受", -1.0f, S_NEG, 0}, {"伤心", -1.2f, S_NEG, 0}, {"委屈", -1.2f, S_NEG, 0},
    {"火大", -1.8f, S_NEG, 0}, {"愤怒", -2.0f, S_NEG, 0}, {"恼火", -1.5f, S_NEG, 0}, {"可恶", -1.8f, S_NEG, 0},
    {"欺负", -1.5f, S_NEG, 0}, {"假货", -2.0f, S_NEG, S_TOPIC}, {"冒牌", -1.5f, S_NEG, 0}, {"山寨", -1.2f, S_NEG, 0},
    {"次品", -1.2f, S_NEG, 0}, {"劣质", -1.5f, S_NEG, 0}, {"破损", -0.6f, S_NEG, 0}, {"坏了", -0.6f, S_NEG, 0},
    {"有问题", -0.5f, S_NEG, 0}, {"有病", -2.0f, S_NEG, 0}, {"不是人", -2.0f, S_NEG, 0},
    {"脑子进水", -2.0f, S_NEG, 0}, {"什么鬼", -1.5f, S_NEG, 0},
    {"搞错", -0.8f, S_NEG, 0}, {"有没有搞错", -1.8f, S_NEG, 0}, {"开什么玩笑", -1.5f, S_NEG, 0},
    {"凭什么", -1.5f, S_NEG, 0}, {"到底", -0.8f, S_NEG, 0}, {"究竟", -0.5f, S_NEG, 0},
    {"怎么回事", -0.8f, S_NEG, 0}, {"怎么还", -0.8f, S_NEG, 0}, {"还没", -0.5f, S_NEG, 0},
    {"一直没", -0.8f, S_NEG, 0}, {"到现在", -0.6f, S_NEG, 0}, {"至今", -0.5f, S_NEG, 0},
    {"催了", -0.8f, S_NEG, 0}, {"催", -0.5f, S_NEG, 0}, {"人呢", -1.0f, S_NEG, 0}, {"有人吗", -0.6f, S_NEG, 0},
    {"机器人", -0.5f, S_NEG, 0}, {"转人工", -0.5f, S_NEG, 0}, {"马上", -0.4f, S_NEG, 0},
    {"立刻", -0.6f, S_NEG, 0}, {"赶紧", -0.8f, S_NEG, 0}, {"快点", -0.8f, S_NEG, 0},
    {"给个说法", -1.5f, S_NEG, 0}, {"说法", -0.6f, S_NEG, 0}, {"交代", -1.0f, S_NEG, 0},
    {"什么意思", -0.6f, S_NEG, 0}, {"算了", -0.8f, S_NEG, 0}, {"再也不", -1.5f, S_NEG, 0},
    {"最后一次", -1.0f, S_NEG, 0}, {"拉黑", -1.5f, S_NEG, 0}, {"卸载", -1.0f, S_NEG, 0},
    {"好几次", -0.8f, S_NEG, 0}, {"多少次", -1.0f, S_NEG, 0}, {"无数次", -1.2f, S_NEG, 0},
    {"几遍", -0.8f, S_NEG, 0}, {"好久", -0.6f, S_NEG, 0}, {"这么久", -0.8f, S_NEG, 0},
    {"半天", -0.5f, S_NEG, 0}, {"天了", -0.7f, S_NEG, 0}, {"周了", -0.6f, S_NEG, 0},
    {"星期了", -0.7f, S_NEG, 0}, {"个月了", -0.7f, S_NEG, 0}, {"小时了", -0.6f, S_NEG, 0},
    {"太麻烦", -1.2f, S_NEG, 0}, {"麻烦", -0.5f, S_NEG, S_FLIP}, {"难用", -1.2f, S_NEG, 0},
    {"卡死", -1.2f, S_NEG, 0}, {"闪退", -0.8f, S_NEG, 0}, {"乱扣", -1.5f, S_NEG, 0}, {"乱收费", -1.8f, S_NEG, 0},
    {"扣我钱", -1.2f, S_NEG, 0}, {"霸王条款", -2.0f, S_NEG, 0}, {"吃相", -1.5f, S_NEG, 0},
    {"什么玩意", -1.5f, S_NEG, 0}, {"没动静", -0.8f, S_NEG, 0}, {"赖账", -1.5f, S_NEG, 0},
    {"丢人", -1.5f, S_NEG, 0}, {"糟糕", -1.2f, S_NEG, 0}, {"糟心", -1.2f, S_NEG, 0}, {"闹心", -1.2f, S_NEG, 0},
    {"好不好", -0.3f, S_NEG, 0}, {"行不行", -0.3f, S_NEG, 0}, {"等了", -0.3f, S_WAIT, 0},
    {"骂", -1.0f, S_NEG, 0}, {"吵", -0.6f, S_NEG, 0}, {"无能", -2.0f, S_NEG, 0},
    {"不专业", -1.3f, S_NEG, 0}, {"没用", -1.2f, S_NEG, 0}, {"废物", -2.5f, S_PROF, 0},
    {"效率低", -1.2f, S_NEG, 0}, {"效率太低", -1.5f, S_NEG, 0}, {"听不懂", -1.2f, S_NEG, 0},
    {"答非所问", -1.5f, S_NEG, 0}, {"靠谱点", -0.8f, S_NEG, 0}, {"没人管", -1.2f, S_NEG, 0},
    {"没人理", -1.5f, S_NEG, 0}, {"石沉大海", -1.5f, S_NEG, 0}, {"一问三不知", -1.5f, S_NEG, 0},
    {"angry", -1.5f, S_NEG, 0}, {"refund now", -1.5f, S_NEG, 0}, {"scam", -2.0f, S_NEG, 0},
    {"fraud", -2.0f, S_NEG, 0}, {"terrible", -1.5f, S_NEG, 0}, {"worst", -1.8f, S_NEG, 0},
    {"useless", -1.5f, S_NEG, 0}, {"ridiculous", -1.5f, S_NEG, 0}, {"disappointed", -1.5f, S_NEG, 0},
    {"bad", -1.0f, S_NEG, S_FLIP}, {"sucks", -2.0f, S_NEG, 0}, {"omg", -0.5f, S_NEG, 0},
    {"😡", -1.5f, S_NEG, 0}, {"😠", -1.5f, S_NEG, 0}, {"🤬", -2.0f, S_NEG, 0}, {"💢", -1.2f, S_NEG, 0},
    {"😤", -1.0f, S_NEG, 0}, {"😭", -0.8f, S_NEG, 0}, {"😢", -0.8f, S_NEG, 0}, {"🙄", -0.8f, S_NEG, 0},
    {"👎", -1.5f, S_NEG, 0}, {"😓", -0.5f, S_NEG, 0},

    //  Positive words
    {"满意", 1.0f, S_POS, 0}, {"很好", 1.0f, S_POS, 0}, {"太好了", 1.5f, S_POS, 0}, {"挺好", 0.9f, S_POS, 0},
    {"真好", 1.2f, S_POS, 0}, {"好评", 1.2f, S_POS, 0}, {"不错", 1.0f, S_POS, 0}, {"棒", 1.2f, S_POS, 0},
    {"赞", 1.0f, S_POS, 0}, {"点赞", 1.2f, S_POS, 0}, {"给力", 1.2f, S_POS, 0}, {"专业", 0.6f, S_POS, 0},
    {"耐心", 0.8f, S_POS, 0}, {"辛苦了", 0.9f, S_POS, 0}, {"喜欢", 0.9f, S_POS, 0}, {"开心", 1.0f, S_POS, 0},
    {"高兴", 1.0f, S_POS, 0}, {"完美", 1.3f, S_POS, 0}, {"好用", 1.0f, S_POS, 0}, {"方便", 0.6f, S_POS, 0},
    {"很快", 0.7f, S_POS, 0}, {"挺快", 0.7f, S_POS, 0}, {"真快", 0.9f, S_POS, 0}, {"速度快", 0.8f, S_POS, 0},
    {"靠谱", 1.0f, S_POS, 0}, {"贴心", 1.0f, S_POS, 0}, {"周到", 1.0f, S_POS, 0}, {"及时", 0.6f, S_POS, 0},
    {"惊喜", 1.0f, S_POS, 0}, {"没问题", 0.6f, S_POS, 0}, {"没事", 0.3f, S_POS, 0}, {"没关系", 0.5f, S_POS, 0},
    {"良心", 0.8f, S_POS, 0}, {"放心", 0.7f, S_POS, 0}, {"态度好", 1.0f, S_POS, 0}, {"热情", 0.9f, S_POS, 0},
    {"解决了", 0.8f, S_POS, 0}, {"搞定", 0.7f, S_POS, 0}, {"收到了", 0.3f, S_POS, 0}, {"推荐", 0.7f, S_POS, 0},
    {"回购", 0.9f, S_POS, 0}, {"划算", 0.8f, S_POS, 0}, {"实惠", 0.8f, S_POS, 0}, {"哈哈", 0.6f, S_POS, 0},
    {"嘻嘻", 0.6f, S_POS, 0}, {"好看", 0.9f, S_POS, 0}, {"好吃", 0.9f, S_POS, 0}, {"优秀", 1.2f, S_POS, 0},
    {"厉害", 0.9f, S_POS, 0}, {"舒服", 0.9f, S_POS, 0}, {"正品", 0.5f, S_POS, 0}, {"值", 0.5f, S_POS, 0},
    {"太棒", 1.6f, S_POS, 0}, {"nice", 1.0f, S_POS, 0}, {"good", 1.0f, S_POS, 0}, {"great", 1.2f, S_POS, 0},
    {"awesome", 1.3f, S_POS, 0}, {"perfect", 1.3f, S_POS, 0}, {"love", 1.0f, S_POS, 0},
    {"👍", 1.0f, S_POS, 0}, {"😊", 0.8f, S_POS, 0}, {"🙂", 0.5f, S_POS, 0}, {"😄", 0.8f, S_POS, 0},
    {"❤", 0.8f, S_POS, 0}, {"🌹", 0.6f, S_POS, 0}, {"🙏", 0.5f, S_POS, 0},

    //  Courtesy
    {"谢谢", 0.6f, S_POLITE, 0}, {"谢谢你们", 0.9f, S_POLITE, 0}, {"谢谢您", 0.9f, S_POLITE, 0},
    {"谢谢啦", 0.8f, S_POLITE, 0}, {"感谢", 0.8f, S_POLITE, 0}, {"多谢", 0.7f, S_POLITE, 0},
    {"谢了", 0.6f, S_POLITE, 0}, {"麻烦了", 0.3f, S_POLITE, 0}, {"麻烦你", 0.2f, S_POLITE, 0},
    {"麻烦您", 0.3f, S_POLITE, 0}, {"不好意思", 0.1f, S_POLITE, 0}, {"请", 0.15f, S_POLITE, 0},
    {"您", 0.15f, S_POLITE, 0}, {"不客气", 0.3f, S_POLITE, 0}, {"好的", 0.3f, S_POLITE, 0},
    {"好滴", 0.4f, S_POLITE, 0}, {"嗯嗯", 0.2f, S_POLITE, 0}, {"thanks", 0.8f, S_POLITE, 0},
    {"thank you", 0.8f, S_POLITE, 0}, {"thx", 0.6f, S_POLITE, 0}, {"辛苦", 0.5f, S_POLITE, 0},
};
