/* The per-thread buffers of the attention kernels (see attention_drive.h):
 * one set for every ISA, since a thread runs one kernel call at a time. */
#include "attention_drive.h"

static _Thread_local _Alignas(64) float kt_tls[NU_ATT_T_CAP], vt_tls[NU_ATT_T_CAP];
static _Thread_local _Alignas(64) float s_tls[2 * NU_ATT_R_MAX * NU_ATT_S_CAP];

nu_att_buffers nu_attention_buffers(void)
{
    return (nu_att_buffers){kt_tls, vt_tls, s_tls};
}
