package dist

import "fmt"

// abi is the handles of one MPI family: the values a C program gets from
// its mpi.h for MPI_COMM_WORLD, the datatypes and MPI_SUM. They are all
// that differs between the families at the level of the calls dsx makes
// (the functions and their argument lists are the MPI standard's).
type abi struct {
	family                         string // "Open MPI", "MPICH"
	world, infoNull                uintptr
	float, double, byte, sum       uintptr
	inPlace                        uintptr
	commTypeShared, threadFunneled uintptr
}

// openMPI: Open MPI's handles are addresses of objects in libmpi
// (ompi/include/mpi.h.in: #define MPI_COMM_WORLD
// OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world), and likewise
// ompi_mpi_float, ompi_mpi_double, ompi_mpi_byte, ompi_mpi_op_sum,
// ompi_mpi_info_null); MPI_IN_PLACE is ((void *) 1); MPI_COMM_TYPE_SHARED
// and MPI_THREAD_FUNNELED are the enum values 0 and 1.
func openMPI(h uintptr) (abi, error) {
	a := abi{family: "Open MPI", inPlace: 1, commTypeShared: 0, threadFunneled: 1}
	for _, s := range []struct {
		name string
		into *uintptr
	}{
		{"ompi_mpi_comm_world", &a.world}, {"ompi_mpi_info_null", &a.infoNull},
		{"ompi_mpi_float", &a.float}, {"ompi_mpi_double", &a.double}, {"ompi_mpi_byte", &a.byte},
		{"ompi_mpi_op_sum", &a.sum},
	} {
		if *s.into = dlsym(h, s.name); *s.into == 0 {
			return abi{}, fmt.Errorf("no symbol %s: not an Open MPI library", s.name)
		}
	}
	return a, nil
}

// mpich: the MPICH family (MPICH, MVAPICH, Intel MPI, Cray MPICH) shares
// one ABI whose handles are integer constants (MPICH's
// src/include/mpi.h.in: MPI_COMM_WORLD ((MPI_Comm)0x44000000), MPI_SUM
// (MPI_Op)(0x58000003), MPI_INFO_NULL ((MPI_Info)0x1c000000), MPI_IN_PLACE
// (void *) -1, MPI_COMM_TYPE_SHARED 1, MPI_THREAD_FUNNELED 1; the
// datatypes, which configure fills in, are MPI_BYTE 0x4c00010d, MPI_FLOAT
// 0x4c00040a and MPI_DOUBLE 0x4c00080b in every generated mpi.h, their
// size in bits 8–15).
var mpich = abi{
	family: "MPICH",
	world:  0x44000000, infoNull: 0x1c000000,
	float: 0x4c00040a, double: 0x4c00080b, byte: 0x4c00010d, sum: 0x58000003,
	inPlace:        ^uintptr(0),
	commTypeShared: 1, threadFunneled: 1,
}

// abiOf tells the family of a loaded library by its symbols: Open MPI's
// handles are symbols of the library; a library without them that has
// MPI_Init is taken to be of the MPICH family, whose handles are constants.
func abiOf(h uintptr) (abi, error) {
	if dlsym(h, "ompi_mpi_comm_world") != 0 {
		return openMPI(h)
	}
	if dlsym(h, "MPI_Init_thread") == 0 {
		return abi{}, fmt.Errorf("no symbol MPI_Init_thread: not an MPI library")
	}
	return mpich, nil
}
