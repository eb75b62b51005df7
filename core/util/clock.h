/* One monotonic clock for every timing in the project. */
#ifndef NU_UTIL_CLOCK_H
#define NU_UTIL_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: differences only). */
double nu_now_seconds(void);

#endif
