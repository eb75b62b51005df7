/* The loopback (or network) figure `nextuser plan --mpi-results` compares
 * with: a ping-pong between ranks 0 and 1.  Latency: half the round trip of
 * an 8-byte message (median of 5 x 1000); bandwidth: a 1 MiB message each
 * way (best of 5 x 50 round trips), in Gbit/s.  Prints one line:
 *   latency_us X gbps Y
 * build: mpicc -O2 -o mpi_pingpong tools/mpi_pingpong.c
 * run:   mpirun -np 2 ./mpi_pingpong */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double round_trips(char *buf, int bytes, int n, int rank)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < n; i++) {
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    return (MPI_Wtime() - t0) / n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0)
            fprintf(stderr, "mpi_pingpong: run it on 2 ranks\n");
        MPI_Finalize();
        return 2;
    }
    enum { BIG = 1 << 20 };
    char *buf = calloc(BIG, 1);
    double lat[5], best = 1e30;
    round_trips(buf, 8, 100, rank); /* warm up */
    for (int r = 0; r < 5; r++)
        lat[r] = round_trips(buf, 8, 1000, rank) / 2;
    for (int r = 0; r < 5; r++) {
        double t = round_trips(buf, BIG, 50, rank) / 2;
        if (t < best)
            best = t;
    }
    qsort(lat, 5, sizeof *lat, cmp);
    if (rank == 0)
        printf("latency_us %.3f gbps %.3f\n", lat[2] * 1e6, BIG * 8.0 / (best - lat[2]) / 1e9);
    free(buf);
    MPI_Finalize();
    return 0;
}
