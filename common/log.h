/*  log.h - one logging call with a level, prefixed by component and id ("broker", "worker 3"). */
#ifndef KF_LOG_H
#define KF_LOG_H

typedef enum { KF_LOG_DEBUG = 0, KF_LOG_INFO, KF_LOG_WARN, KF_LOG_ERROR } kf_log_level_t;

//  Sets the component name printed on every line ("broker", "worker 3"). Copies the string.
void kf_log_set_component (const char *component);

//  Sets the lowest level that is printed; the default is INFO, or the KEFU_LOG environment variable
//  (debug, info, warn, error) when set.
void kf_log_set_level (kf_log_level_t level);

//  Writes one line to stderr: time, level, component, message. Never fails.
void kf_log (kf_log_level_t level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

#define kf_debug(...) kf_log (KF_LOG_DEBUG, __VA_ARGS__)
#define kf_info(...)  kf_log (KF_LOG_INFO, __VA_ARGS__)
#define kf_warn(...)  kf_log (KF_LOG_WARN, __VA_ARGS__)
#define kf_error(...) kf_log (KF_LOG_ERROR, __VA_ARGS__)

//  Out of memory: there is no sane recovery, so print and abort.
void kf_oom (void) __attribute__ ((noreturn));

//  Allocation wrappers that abort on failure.
void *kf_malloc (unsigned long size);
void *kf_calloc (unsigned long count, unsigned long size);
void *kf_realloc (void *ptr, unsigned long size);
char *kf_strdup (const char *s);
char *kf_strndup (const char *s, unsigned long n);
#endif
