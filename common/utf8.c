/*  utf8.c - UTF-8 validation, decoding and counting. */
#include "common/utf8.h"

int
kf_utf8_decode (const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *) str;
    if (len == 0)
        return 0;
    if (s [0] < 0x80) {
        *cp = s [0];
        return 1;
    }
    int need;
    uint32_t c, min;
    if ((s [0] & 0xE0) == 0xC0)      { need = 2; c = s [0] & 0x1F; min = 0x80; }
    else if ((s [0] & 0xF0) == 0xE0) { need = 3; c = s [0] & 0x0F; min = 0x800; }
    else if ((s [0] & 0xF8) == 0xF0) { need = 4; c = s [0] & 0x07; min = 0x10000; }
    else
        return 0;
    if (len < (size_t) need)
        return 0;
    for (int i = 1; i < need; i++) {
        if ((s [i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s [i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return need;
}

int
kf_utf8_encode (uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *) out;
    if (cp < 0x80) {
        o [0] = (unsigned char) cp;
        return 1;
    }
    if (cp < 0x800) {
        o [0] = 0xC0 | (cp >> 6);
        o [1] = 0x80 | (cp & 0x3F);
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        o [0] = 0xE0 | (cp >> 12);
        o [1] = 0x80 | ((cp >> 6) & 0x3F);
        o [2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    if (cp > 0x10FFFF)
        return 0;
    o [0] = 0xF0 | (cp >> 18);
    o [1] = 0x80 | ((cp >> 12) & 0x3F);
    o [2] = 0x80 | ((cp >> 6) & 0x3F);
    o [3] = 0x80 | (cp & 0x3F);
    return 4;
}

bool
kf_utf8_is_valid (const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char) s [i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = kf_utf8_decode (s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t
kf_utf8_count (const char *s, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) s [i] & 0xC0) != 0x80)
            count++;
    return count;
}

size_t
kf_utf8_complete_prefix (const char *s, size_t len)
{
    //  Walk back over at most 3 continuation bytes to the last lead byte
    size_t i = len;
    int back = 0;
    while (i > 0 && back < 4 && ((unsigned char) s [i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return back ? 0 : len;
    unsigned char lead = (unsigned char) s [i - 1];
    int need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3
             : (lead & 0xF8) == 0xF0 ? 4 : 1;
    if (back + 1 < need)
        return i - 1;
    return len;
}
