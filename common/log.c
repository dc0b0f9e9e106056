/*  log.c - leveled logging to stderr and the allocation wrappers that abort on out-of-memory. */
#include "common/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static char s_component [64] = "kefu";
static int s_level = -1;

static const char *s_names [] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
kf_log_set_component (const char *component)
{
    snprintf (s_component, sizeof s_component, "%s", component);
}

void
kf_log_set_level (kf_log_level_t level)
{
    s_level = level;
}

static int
s_threshold (void)
{
    if (s_level < 0) {
        const char *env = getenv ("KEFU_LOG");
        s_level = KF_LOG_INFO;
        for (int i = 0; env && i < 4; i++)
            if (strcasecmp (env, s_names [i]) == 0)
                s_level = i;
    }
    return s_level;
}

void
kf_log (kf_log_level_t level, const char *format, ...)
{
    if ((int) level < s_threshold ())
        return;
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    localtime_r (&tv.tv_sec, &tm);
    char line [2048];
    int n = (int) strftime (line, 32, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf (line + n, sizeof line - n, ".%03d %-5s %s: ",
                   (int) (tv.tv_usec / 1000), s_names [level], s_component);
    va_list args;
    va_start (args, format);
    vsnprintf (line + n, sizeof line - n, format, args);
    va_end (args);
    fprintf (stderr, "%s\n", line);
}

void
kf_oom (void)
{
    fprintf (stderr, "kefu: out of memory\n");
    abort ();
}

void *
kf_malloc (unsigned long size)
{
    void *p = malloc (size ? size : 1);
    if (!p)
        kf_oom ();
    return p;
}

void *
kf_calloc (unsigned long count, unsigned long size)
{
    void *p = calloc (count ? count : 1, size ? size : 1);
    if (!p)
        kf_oom ();
    return p;
}

void *
kf_realloc (void *ptr, unsigned long size)
{
    void *p = realloc (ptr, size ? size : 1);
    if (!p)
        kf_oom ();
    return p;
}

char *
kf_strdup (const char *s)
{
    return kf_strndup (s, strlen (s));
}

char *
kf_strndup (const char *s, unsigned long n)
{
    char *p = kf_malloc (n + 1);
    memcpy (p, s, n);
    p [n] = 0;
    return p;
}
