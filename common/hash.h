/*  hash.h - FNV-1a, the one string hash of kefu: dictionaries, feature and term hashes, the
    bench's byte-exact checks. Not for anything an attacker should not collide (no seed secret). */
#ifndef KF_HASH_H
#define KF_HASH_H
#include <stddef.h>
#include <stdint.h>

#define KF_FNV1A_BASIS 14695981039346656037ULL      //  The 64-bit offset basis

//  Continues the 64-bit FNV-1a hash `hash` (KF_FNV1A_BASIS to start) over `len` bytes of `data`.
static inline uint64_t
kf_fnv1a (uint64_t hash, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ bytes [i]) * 1099511628211ULL;
    return hash;
}

#endif
