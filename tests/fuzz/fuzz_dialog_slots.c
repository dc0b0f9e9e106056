/*  fuzz_dialog_slots.c - libFuzzer target for the session slots a worker gets back from the broker
    (workers/dialog_slots.h): anything a previous version, a hand edit or a corrupted row could
    hold. The input is one msgpack object (context.slots; not a map reads as empty). Whatever is
    read packs to one map that reads and packs again to the same bytes, and the draft can be edited
    and cleared. */
#include "common/mpack.h"
#include "workers/dialog_slots.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_dialog_slots: invariant failed: %s\n", what);
        abort ();
    }
}

//  Packs `slots` into `buffer` (initialised here)
static void
s_pack (const kf_slots_t *slots, msgpack_sbuffer *buffer)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    kf_slots_pack (slots, &pk);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    msgpack_unpacked input;
    if (!kf_mp_unpack_borrowed ((const char *) data, size, &input))
        return 0;
    kf_slots_t slots;
    kf_slots_read (&slots, &input.data);
    s_require (!kf_slots_is_awaiting (&slots) || slots.has_draft, "awaiting only with a draft");
    for (int i = 0; i < KF_SLOTS_FIELD_COUNT; i++)
        s_require (kf_slots_field (&slots, kf_slots_field_names [i]) == slots.fields [i],
                   "a field by its name");
    msgpack_sbuffer first, second;
    s_pack (&slots, &first);
    msgpack_unpacked packed;
    s_require (kf_mp_unpack_borrowed (first.data, first.size, &packed)
               && packed.data.type == MSGPACK_OBJECT_MAP, "the slots pack to one map");
    kf_slots_t again;
    kf_slots_read (&again, &packed.data);
    s_require (strcmp (again.order_no, slots.order_no) == 0 && strcmp (again.phone, slots.phone) == 0
               && again.has_draft == slots.has_draft
               && strcmp (again.ticket_type, slots.ticket_type) == 0
               && strcmp (again.awaiting, slots.awaiting) == 0, "the slots read back the same");
    s_pack (&again, &second);
    s_require (first.size == second.size && memcmp (first.data, second.data, first.size) == 0,
               "packing is stable through a read");
    kf_slots_release (&again);
    msgpack_unpacked_destroy (&packed);
    msgpack_sbuffer_destroy (&first);
    msgpack_sbuffer_destroy (&second);

    //  A turn's edits: a field set (a known and an unknown name), the draft dropped, packed
    kf_slots_set_field (&slots, "address", (const char *) data, size < 64 ? size : 64);
    kf_slots_set_field (&slots, "nonsense", "x", 1);
    s_pack (&slots, &first);
    msgpack_sbuffer_destroy (&first);
    kf_slots_clear_draft (&slots);
    s_require (!slots.has_draft && !kf_slots_is_awaiting (&slots), "a cleared draft");
    s_pack (&slots, &first);
    msgpack_sbuffer_destroy (&first);
    kf_slots_release (&slots);
    msgpack_unpacked_destroy (&input);
    return 0;
}
