// A stand-in for libnccl.so.2 with the signatures of nccl.h, for the
// binding's tests on machines without a GPU: it records what it is given
// and checks the 128-byte id that ncclCommInitRank takes by value.
#include <stddef.h>
#include <string.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef int ncclResult_t;
typedef struct { int nranks, rank; } comm_t;
typedef comm_t *ncclComm_t;

static comm_t comms[16];
int fake_last_dtype = -1, fake_last_op = -1;
size_t fake_last_count;
void *fake_last_stream;

ncclResult_t ncclGetVersion(int *v) { *v = 21903; return 0; }
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
	for (int i = 0; i < 128; i++) id->internal[i] = (char)(i * 7 + 3);
	return 0;
}
ncclResult_t ncclCommInitRank(ncclComm_t *c, int nranks, ncclUniqueId id, int rank) {
	for (int i = 0; i < 128; i++)
		if (id.internal[i] != (char)(i * 7 + 3)) return 4; // ncclInvalidArgument
	if (rank < 0 || rank >= nranks || rank >= 16) return 4;
	comms[rank].nranks = nranks;
	comms[rank].rank = rank;
	*c = &comms[rank];
	return 0;
}
// The stand-in's all-reduce multiplies every element by the number of
// ranks: what a sum over ranks holding equal buffers gives.
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t n, int dtype, int op, ncclComm_t c, void *stream) {
	fake_last_dtype = dtype, fake_last_op = op, fake_last_count = n, fake_last_stream = stream;
	if (send != recv || op != 0) return 5; // ncclInvalidUsage: dsx reduces in place, by sum
	for (size_t i = 0; i < n; i++) {
		if (dtype == 7) ((float *)recv)[i] *= c->nranks;
		else if (dtype == 8) ((double *)recv)[i] *= c->nranks;
		else return 4;
	}
	return 0;
}
ncclResult_t ncclCommDestroy(ncclComm_t c) { return c ? 0 : 4; }
ncclResult_t ncclCommAbort(ncclComm_t c) { return 0; }
const char *ncclGetErrorString(ncclResult_t r) { return r == 4 ? "invalid argument" : r == 5 ? "invalid usage" : "unknown"; }
