/*  test_ticket_dialog.c - a ticket collected over turns from real Chinese messages: the type
    guessed or asked, fields taken from what the customer already said, bad values asked again,
    side questions, cancel, and the slots surviving the trip through msgpack between turns. */
#include "testutil.h"
#include "common/log.h"
#include "common/mpack.h"
#include "workers/ticket_dialog.h"

//  One turn as the pipeline runs it: slots read from the previous turn's packed slots, the
//  entities of the message, the dialog step, the new slots packed again
typedef struct {
    msgpack_sbuffer packed;     //  The slots between turns
    char *reply;
    kf_ticket_step_t step;
    kf_slots_t slots;           //  After the last turn (before packing), for checks
    msgpack_unpacked unpacked;
    bool has_unpacked;
} s_dialog_t;

static void
s_dialog_init (s_dialog_t *dialog)
{
    memset (dialog, 0, sizeof *dialog);
    msgpack_sbuffer_init (&dialog->packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &dialog->packed, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 0);
}

static void
s_dialog_end_turn (s_dialog_t *dialog)
{
    free (dialog->reply);
    dialog->reply = NULL;
    if (dialog->has_unpacked) {
        kf_slots_release (&dialog->slots);
        msgpack_unpacked_destroy (&dialog->unpacked);
        dialog->has_unpacked = false;
    }
}

static kf_ticket_step_t
s_turn (s_dialog_t *dialog, const char *message, bool is_other)
{
    s_dialog_end_turn (dialog);
    CHECK (kf_mp_unpack_one (dialog->packed.data, dialog->packed.size, &dialog->unpacked));
    dialog->has_unpacked = true;
    kf_slots_read (&dialog->slots, &dialog->unpacked.data);
    kf_entities_t found;
    kf_entity_rules_t rules = { NULL };
    kf_entities_extract (&rules, message, strlen (message), &found);
    dialog->step = kf_ticket_dialog_step (&dialog->slots, message, strlen (message), &found, is_other,
                                          &dialog->reply);
    msgpack_sbuffer next;
    msgpack_sbuffer_init (&next);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &next, msgpack_sbuffer_write);
    kf_slots_pack (&dialog->slots, &pk);
    msgpack_sbuffer_destroy (&dialog->packed);
    dialog->packed = next;
    return dialog->step;
}

static void
s_dialog_destroy (s_dialog_t *dialog)
{
    s_dialog_end_turn (dialog);
    msgpack_sbuffer_destroy (&dialog->packed);
}

//  报修 over three turns: the problem from the first message, then the address, then the phone
static void
s_test_repair (void)
{
    s_dialog_t d;
    s_dialog_init (&d);
    CHECK_INT (s_turn (&d, "我家空调坏了，一直不制冷，要报修", false), KF_TICKET_ASK);
    CHECK_STR (d.slots.ticket_type, "报修");
    CHECK_STR (d.slots.awaiting, "address");
    CHECK (strstr (d.reply, "好的，我来帮您提交报修工单") && strstr (d.reply, "地址"));
    CHECK_STR (kf_slots_field (&d.slots, "description"), "我家空调坏了，一直不制冷，要报修");
    CHECK_INT (s_turn (&d, "北京市朝阳区建国路88号3栋2单元501室", false), KF_TICKET_ASK);
    CHECK_STR (d.slots.awaiting, "phone");
    CHECK_STR (kf_slots_field (&d.slots, "address"), "北京市朝阳区建国路88号3栋2单元501室");
    //  Not a phone number: asked again with the reason
    CHECK_INT (s_turn (&d, "12345", false), KF_TICKET_ASK);
    CHECK (strstr (d.reply, "电话号码格式不正确"));
    CHECK_STR (d.slots.awaiting, "phone");
    CHECK_INT (s_turn (&d, "我的手机是13812345678", false), KF_TICKET_COMPLETE);
    CHECK (d.reply == NULL);
    CHECK_STR (kf_slots_field (&d.slots, "phone"), "13812345678");
    CHECK_STR (d.slots.awaiting, "");
    //  What the broker receives
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    kf_ticket_dialog_pack (&d.slots, &pk);
    msgpack_unpacked ticket;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &ticket));
    CHECK (kf_mp_str_eq (&ticket.data, "type", "报修"));
    const msgpack_object *fields = kf_mp_get (&ticket.data, "fields");
    CHECK_INT (fields->via.map.size, 3);
    CHECK (kf_mp_str_eq (fields, "address", "北京市朝阳区建国路88号3栋2单元501室"));
    msgpack_unpacked_destroy (&ticket);
    msgpack_sbuffer_destroy (&buffer);
    s_dialog_destroy (&d);
}

//  No type in the first message: asked; everything else in one answer
static void
s_test_type_asked (void)
{
    s_dialog_t d;
    s_dialog_init (&d);
    CHECK_INT (s_turn (&d, "我要提交一个工单", false), KF_TICKET_ASK);
    CHECK_STR (d.reply, KF_TICKET_ASK_TYPE);
    CHECK_STR (d.slots.awaiting, "type");
    CHECK (!kf_slots_field (&d.slots, "description"));      //  "I want a ticket" describes nothing
    CHECK_INT (s_turn (&d, "随便", false), KF_TICKET_ASK);
    CHECK (strstr (d.reply, "没有识别出工单类型"));
    CHECK_INT (s_turn (&d, "投诉", false), KF_TICKET_ASK);
    CHECK_STR (d.slots.ticket_type, "投诉");
    CHECK_STR (d.slots.awaiting, "phone");
    //  The answer to the phone also describes the problem: both taken
    CHECK_INT (s_turn (&d, "13900001111，快递员把我的包裹扔在门口不管了", false), KF_TICKET_COMPLETE);
    CHECK_STR (kf_slots_field (&d.slots, "description"), "快递员把我的包裹扔在门口不管了");
    s_dialog_destroy (&d);

    //  Punctuation, symbols or emoji describe nothing: asked again
    s_dialog_init (&d);
    CHECK_INT (s_turn (&d, "我要咨询", false), KF_TICKET_ASK);
    CHECK_INT (s_turn (&d, "13900001111", false), KF_TICKET_ASK);
    CHECK_STR (d.slots.awaiting, "description");
    const char *nothing [] = { "？？？", "。。。！！", "😡😡😡", "……", "~~~", "!!", "？ ？" };
    for (size_t i = 0; i < sizeof nothing / sizeof nothing [0]; i++) {
        CHECK_INT (s_turn (&d, nothing [i], false), KF_TICKET_ASK);
        CHECK (strstr (d.reply, "没能识别您的回答"));
        CHECK_STR (d.slots.awaiting, "description");
    }
    CHECK_INT (s_turn (&d, "物业费能按季度交吗？", false), KF_TICKET_COMPLETE);
    CHECK_STR (kf_slots_field (&d.slots, "description"), "物业费能按季度交吗？");
    s_dialog_destroy (&d);

    const kf_ticket_field_t *description = kf_ticket_field_find ("description", 11);
    const kf_ticket_field_t *address = kf_ticket_field_find ("address", 7);
    CHECK (kf_ticket_field_check (description, "坏了", strlen ("坏了")) == NULL);
    CHECK (kf_ticket_field_check (description, "ok", 2) == NULL);
    CHECK (kf_ticket_field_check (description, "ＯＫ", strlen ("ＯＫ")) == NULL);
    CHECK (kf_ticket_field_check (description, "？好", strlen ("？好")) != NULL);   //  One word char
    CHECK (kf_ticket_field_check (description, "？？？", strlen ("？？？")) != NULL);
    CHECK (kf_ticket_field_check (address, "、、、、、", strlen ("、、、、、")) != NULL);
    CHECK (kf_ticket_field_check (address, "朝阳区建国路", strlen ("朝阳区建国路")) == NULL);
}

//  售后: the order number and phone from the first message; a side question keeps the draft
static void
s_test_after_sale_and_side (void)
{
    s_dialog_t d;
    s_dialog_init (&d);
    CHECK_INT (s_turn (&d, "订单ORD-2024-001收到的杯子是破损的，要申请售后", false), KF_TICKET_ASK);
    CHECK_STR (d.slots.ticket_type, "售后");
    CHECK_STR (kf_slots_field (&d.slots, "order_no"), "ORD-2024-001");
    CHECK_STR (d.slots.awaiting, "phone");
    //  Another request while the phone is awaited: the draft waits, untouched
    CHECK_INT (s_turn (&d, "退货运费谁出？", true), KF_TICKET_SIDE);
    CHECK (d.reply == NULL);
    CHECK_STR (d.slots.awaiting, "phone");
    char *reminder = kf_ticket_dialog_reminder (&d.slots);
    CHECK (reminder && strstr (reminder, "售后") && strstr (reminder, "联系电话"));
    free (reminder);
    CHECK_INT (s_turn (&d, "138 1234 5678", false), KF_TICKET_ASK);
    CHECK_STR (kf_slots_field (&d.slots, "phone"), "13812345678");
    CHECK_STR (d.slots.awaiting, "description");
    CHECK_INT (s_turn (&d, "杯子收到时杯口有裂纹，没法用", false), KF_TICKET_COMPLETE);
    s_dialog_destroy (&d);
}

//  The phone asked for, answered with words around it: the number is taken, a landline too
//  ("电话是 021-12345678" reads as a business query to the model: the pipeline passes is_other), a
//  number inside an order number or a word is not, and a bad one is asked again
static void
s_test_phone_in_words (void)
{
    static const struct { const char *answer, *phone; bool is_other; } cases [] = {
        { "电话 13800138000", "13800138000", true },
        { "电话是 021-12345678", "021-12345678", true },
        { "我的座机：0755 8888 1234", "075588881234", false },
        { "电话：０２１－１２３４５６７８", "021-12345678", false },
        { "电话是02112345678", "02112345678", false },
        { "订单号 20240101123456，电话 021-12345678", "021-12345678", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_dialog_t d;
        s_dialog_init (&d);
        CHECK_INT (s_turn (&d, "我要投诉，快递员把东西扔门口了", false), KF_TICKET_ASK);
        CHECK_STR (d.slots.awaiting, "phone");
        kf_ticket_step_t step = s_turn (&d, cases [i].answer, cases [i].is_other);
        if (step != KF_TICKET_COMPLETE)
            fprintf (stderr, "answer %s: step %d\n", cases [i].answer, step);
        CHECK_INT (step, KF_TICKET_COMPLETE);
        CHECK_STR (kf_slots_field (&d.slots, "phone"), cases [i].phone);
        CHECK_STR (kf_slots_field (&d.slots, "description"), "我要投诉，快递员把东西扔门口了");
        s_dialog_destroy (&d);
    }
    static const char *bad [] = { "电话 12345", "订单号 ORD-2024-0012345", "工号 AB1234567",
                                  "订单号 20240101123456" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_dialog_t d;
        s_dialog_init (&d);
        CHECK_INT (s_turn (&d, "我要投诉，快递员把东西扔门口了", false), KF_TICKET_ASK);
        CHECK_INT (s_turn (&d, bad [i], false), KF_TICKET_ASK);
        CHECK (strstr (d.reply, "电话号码格式不正确"));
        CHECK (!kf_slots_field (&d.slots, "phone"));
        CHECK_INT (s_turn (&d, bad [i], true), KF_TICKET_SIDE);    //  Plainly something else
        s_dialog_destroy (&d);
    }
}

//  Cancel words end a draft; long messages that mention 取消 do not
static void
s_test_cancel (void)
{
    CHECK (kf_ticket_dialog_is_cancel ("算了", strlen ("算了")));
    CHECK (kf_ticket_dialog_is_cancel ("不用了，谢谢", strlen ("不用了，谢谢")));
    CHECK (kf_ticket_dialog_is_cancel ("取消吧", strlen ("取消吧")));
    const char *long_one = "我想取消订单但是页面上的按钮一直是灰色的点不了";
    CHECK (!kf_ticket_dialog_is_cancel (long_one, strlen (long_one)));
    s_dialog_t d;
    s_dialog_init (&d);
    CHECK_INT (s_turn (&d, "我要报修，厨房水管漏水了", false), KF_TICKET_ASK);
    CHECK_INT (s_turn (&d, "算了", false), KF_TICKET_CANCELLED);
    CHECK_STR (d.reply, KF_TICKET_CANCELLED_REPLY);
    CHECK (!d.slots.has_draft);
    CHECK (!kf_slots_is_awaiting (&d.slots));
    s_dialog_destroy (&d);
}

//  Slots keep the entities, drop bad values, and pass other keys through
static void
s_test_slots (void)
{
    msgpack_sbuffer in;
    msgpack_sbuffer_init (&in);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &in, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    kf_mp_pack_kv_str (&pk, "order_no", "ORD-2024-001");
    kf_mp_pack_kv_int (&pk, "phone", 138);                  //  Wrong type: dropped
    kf_mp_pack_kv_str (&pk, "awaiting", "phone");           //  No draft: nothing awaited
    kf_mp_pack_kv_str (&pk, "business_note", "kept");
    kf_mp_pack_cstr (&pk, "ticket_draft");
    msgpack_pack_nil (&pk);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (in.data, in.size, &unpacked));
    kf_slots_t slots;
    kf_slots_read (&slots, &unpacked.data);
    CHECK_STR (slots.order_no, "ORD-2024-001");
    CHECK_STR (slots.phone, "");
    CHECK (!kf_slots_is_awaiting (&slots));
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer_init (&pk, &out, msgpack_sbuffer_write);
    kf_slots_pack (&slots, &pk);
    msgpack_unpacked again;
    CHECK (kf_mp_unpack_one (out.data, out.size, &again));
    CHECK_INT (again.data.via.map.size, 2);
    CHECK (kf_mp_str_eq (&again.data, "business_note", "kept"));
    CHECK (kf_mp_str_eq (&again.data, "order_no", "ORD-2024-001"));
    msgpack_unpacked_destroy (&again);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&in);
    msgpack_sbuffer_destroy (&out);
    kf_slots_release (&slots);
}

int
main (void)
{
    s_test_repair ();
    s_test_type_asked ();
    s_test_after_sale_and_side ();
    s_test_phone_in_words ();
    s_test_cancel ();
    s_test_slots ();
    TEST_PASS ("test_ticket_dialog");
    return 0;
}
