// Package dist is the collectives that data-parallel training needs: rank,
// size, local rank, all-reduce (sum) of float32 and float64 buffers,
// broadcast, barrier and abort, on existing engines, never a transport of
// its own.
//
// # Engines
//
// A process started alone gets Local, a world of one, in which every
// collective is the identity: code written for P ranks runs unchanged on
// one, and no library is loaded. A process that a launcher started as one
// of several ranks (Open MPI's mpirun: OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK;
// MPICH's Hydra and other PMI launchers: PMI_RANK/PMI_SIZE/MPI_LOCALRANKID;
// a Slurm srun step: SLURM_PROCID/SLURM_STEP_NUM_TASKS/SLURM_LOCALID, which
// an sbatch script alone does not have) joins the job through MPI: FromEnv
// reads the launcher (DetectLauncher) and DSX_DIST (auto, mpi, off) and
// returns the Comm and a line saying why.
//
// MPI is loaded at run time with purego, as dsx loads the BLAS, so the
// binary stays CGO_ENABLED=0 and runs where no MPI is installed: Open MPI
// (Debian's libopenmpi3, libmpi.so.40), whose handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, ...) are addresses of symbols of the library, and the
// MPICH family (MPICH, MVAPICH, Intel MPI, Cray MPICH: libmpich.so.12,
// libmpi.so.12), whose handles are integer constants (mpi_abi.go cites
// them). The launcher's family is tried first; DSX_MPI_LIB names another
// library; a library of another MPI than the launcher's starts alone and
// is an error naming both. Every MPI call runs on one locked OS thread,
// the one that initialised MPI (MPI_THREAD_FUNNELED). MPI's default error
// handler stays: a collective that fails (a rank lost) aborts the job,
// and the launcher names the lost rank (mpirun: "process rank 1 ... exited
// on signal 9"), within about a second here (TestMPIKilledRank bounds it
// at 30 s). A third engine is one file: a Comm and an entry in Engines.
//
// NCCL (package dist/nccl, in the gpu build) reduces device memory: its
// unique id is made on rank 0 and broadcast over the MPI Comm, each rank
// joins with the GPU of its local rank, and dW and db are all-reduced in
// place on the stream the layer's kernels run on, with no host copy
// (backend/cuda's run.Collectives).
//
// # The step
//
// Training with P ranks (package train) keeps one model: each rank computes
// the gradients of its share of every global batch (Share), the layer
// (through backend.Config.Comm, the protocol of kit.Ranks) all-reduces
// the batch's loss denominators before anything divides by them and dW and
// db before the optimizer update, and every rank applies the same update,
// so the parameters stay identical without a broadcast (train compares a
// checksum of them with rank 0's now and then).
//
// # The all-reduce of an LLM head on 8 H100s, on paper
//
// An all-reduce of S bytes over n GPUs takes S/algbw, and NCCL's tests
// report busbw = algbw·2(n−1)/n (nccl-tests' doc/PERFORMANCE.md). On 8
// H100 SXM over NVLink 4 and NVSwitch, NCCL's all-reduce peaks at a busbw
// of about 480 GB/s with NVLink SHARP (algbw about 275 GB/s), and about 370
// GB/s with the ring (NCCL's maintainer, NVIDIA/nccl-tests issue 212).
// dsx keeps dW and db in float32 (the master weights' gradients):
//
//	head (B×N×T)        dW + db bytes   NVLS (275 GB/s)   ring (211 GB/s)
//	8192×4096×128256    2.102 GB        7.7 ms            9.9 ms
//	8192×2304×256000    2.360 GB        8.6 ms            11.2 ms
//
// Beside it, the step: one H100 ran 8192×4096×128256 in 332.9 ms (fp32),
// about 82 ms (tf32) and 46.6 ms (bf16 products) (bench/RESULTS.md, issue
// 5); split over 8 GPUs each rank's 1024 rows take an eighth of that, about
// 41.6, 10.3 and 5.8 ms. The 256000-class head has 1.12 times the products
// (about 6.5 ms in bf16, scaled, not measured). So in bf16 the all-reduce
// takes longer than the step's arithmetic, and run after it (as dsx does
// today) it would more than double the step; in fp32 it adds about a
// fifth.
//
// # Hiding it: the tile-by-tile overlap
//
// The vocabulary-tiled plan (backend.Config.VocabTile) already computes dW
// one tile of columns at a time: in the last row chunk of a step, once a
// tile's xᵀ·dz has been added, that tile of dW is final. The design, for
// which the plan's tile loops (lower.Step.Tiles) and the per-buffer
// run.Reducer.AllReduce are the hooks: keep W, dW and the optimizer's
// state tile-major (each tile's N×V block contiguous, so that it is one
// NCCL buffer; the products read and write it with leading dimension V),
// record an event on the compute stream after each tile's dW product of
// the last chunk, and have a second, non-blocking stream (the legacy
// default stream would serialise with it) wait on that event and
// all-reduce the tile while the compute stream goes on with the next
// tiles; the optimizer of tile t waits on the all-reduce of tile t. With k
// tiles, what stays exposed is about the all-reduce's time less the
// compute it runs beside: the tiled step's second pass (the recomputed
// logits, dz, xᵀ·dz and dz·Wᵀ: about 5.8 ms a rank in bf16 at
// 8192×4096×128256, with the recomputation's product on top of the 5.8 ms
// above) after its first tile, (k−1)/k of it. For 8 to 16 tiles that
// leaves about 2–3 ms of the 7.7 ms exposed (less where NCCL's kernels,
// which take SMs, slow the compute beside them); all-reducing dW in
// bfloat16 halves the bytes and would hide it all, and a reduce-scatter
// with each rank updating its eighth of W (then an all-gather) moves the
// same bytes as the all-reduce but does an eighth of the optimizer's work.
package dist
