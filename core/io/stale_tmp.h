/* The temporary names of interrupted writes: atomic files write
 * PATH.tmp.PID.N beside PATH, atomic directories TARGET.tmp.PID.N beside
 * TARGET.  A writer killed before its rename leaves that name behind; the
 * next writer of the same path removes it once its process is gone. */
#ifndef NU_STALE_TMP_H
#define NU_STALE_TMP_H

/* The PID in `name` when it is "BASE.tmp.PID.N" (digits), else 0. */
long nu_tmp_name_pid(const char *name, const char *base);

/* True when `name` is "BASE.tmp.PID.N" of a process that no longer exists
 * (not this one, and kill(PID, 0) says ESRCH). */
int nu_tmp_name_stale(const char *name, const char *base);

/* Removes the regular files PATH.tmp.PID.N of dead processes beside `path`
 * (the leftovers of killed atomic file writes); never follows a link,
 * never removes a directory. */
void nu_stale_tmp_files_remove(const char *path);

#endif
