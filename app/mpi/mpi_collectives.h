/* The library's nu_collectives (nextuser.h) on an MPI communicator: what a
 * sharded training run talks through. */
#ifndef NU_MPI_COLLECTIVES_H
#define NU_MPI_COLLECTIVES_H

#include <mpi.h>

#include "nextuser/nextuser.h"

/* Fills c for comm; `comm` must outlive c's use (c->ctx points to it). */
void nu_mpi_collectives(MPI_Comm *comm, nu_collectives *c);

#endif
