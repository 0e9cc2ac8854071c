/* Renames a layout's Side and side_* API so that tiered.h can include two layouts: with
 * TIER_NAME(name) defined, each name becomes TIER_NAME(name); included again after
 * TIER_NAME is undefined, the names are released for the next layout. */
#ifdef TIER_NAME
#define Side TIER_NAME(Side)
#define side_init TIER_NAME(side_init)
#define side_load TIER_NAME(side_load)
#define side_touch_hint TIER_NAME(side_touch_hint)
#define side_set TIER_NAME(side_set)
#define side_best TIER_NAME(side_best)
#define side_free TIER_NAME(side_free)
#define side_hash TIER_NAME(side_hash)
#define side_hash_from TIER_NAME(side_hash_from)
#define side_bytes TIER_NAME(side_bytes)
#else
#undef Side
#undef side_init
#undef side_load
#undef side_touch_hint
#undef side_set
#undef side_best
#undef side_free
#undef side_hash
#undef side_hash_from
#undef side_bytes
#endif
