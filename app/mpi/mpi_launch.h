/* nextuser under mpirun (docs/mpi.md).  The executable calls MPI_Init
 * only when a launcher started it, so a plain run pays nothing and prints
 * nothing extra; only this directory (linked into the nextuser executable
 * alone, never into libnextuser) calls MPI. */
#ifndef NU_MPI_LAUNCH_H
#define NU_MPI_LAUNCH_H

/* 1 when started by mpirun/mpiexec: OpenMPI's OMPI_COMM_WORLD_SIZE, or a
 * PMIx/PMI rank (PMIX_RANK, PMI_RANK). */
int nu_mpi_launched(void);

/* Runs command argv[0] (argv as after "nextuser") as one rank of the job:
 * search, retrieve, serve and train run sharded; any other command runs as usual on a
 * job of one rank and is refused on more.  Returns the exit code. */
int nu_mpi_main(int argc, char **argv);

#endif
