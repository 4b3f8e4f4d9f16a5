// harness.cc — the runtime of cudashim.h (fibers, the block scheduler, warp
// exchanges, barriers) and the program that package
// dsx/backend/cuda/hostkern starts: it maps the device buffers of a test at
// their device addresses and launches kernels by name on request.
//
// Protocol (little-endian; stdin → requests, stdout → one reply each):
//   MAP    u32 1, u32 n, n × {u64 addr, u64 fileoff, u64 maplen, u64 start, u64 bytes}
//          maps maplen bytes of fd 3 at addr (MAP_FIXED_NOREPLACE); the
//          buffer is bytes at start (for the messages of faults)
//   LAUNCH u32 2, u32 namelen, name, u32 gx, gy, bx, by, u64 shmem, u32 nargs,
//          nargs × u64, u32 flags (1: threads in reverse order)
//   QUIT   u32 3
// Reply: u32 status (0 ok, 1 error), u32 len, len bytes of message.
// A fault (a read or write outside every buffer) or a launch that runs past
// DSX_CPU_LIMIT seconds of CPU (default 600) prints what it was to stderr
// and exits with status 3.

#include "cudashim.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#define TSAN 1
extern "C" void AnnotateIgnoreWritesBegin(const char *file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char *file, int line);
#else
#define TSAN 0
#endif

namespace dsx {

// Context switches: on x86-64 a few instructions of our own (the
// callee-saved registers and the stack pointer; no system call), elsewhere
// ucontext. MXCSR and the x87 control word are not switched (saving them
// costs more than the rest): every fiber runs in the process's one
// floating-point environment, which no kernel changes.
#if defined(__x86_64__)
#define DSX_FAST_SWITCH 1
extern "C" void dsx_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl dsx_switch
    .type dsx_switch, @function
dsx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dsx_switch, .-dsx_switch
)");
#else
#define DSX_FAST_SWITCH 0
#endif

struct Thread {
#if DSX_FAST_SWITCH
    void *sp = nullptr;
#else
    ucontext_t ctx;
#endif
    unsigned char *stack = nullptr;
    size_t stack_size = 0;
    // colour staggers the top of each stack (the stacks are equally
    // aligned, and their tops would share cache sets).
    size_t colour = 0;
    int index = 0;     // linear index in the block
    uint64_t gen = 0;  // the block it last started in
    // Shared between the fiber and the scheduler: relaxed atomics, so that
    // under ThreadSanitizer they neither race nor order memory.
    std::atomic<int> state{RUN};
    std::atomic<int> op{0}, size{0}, arg{0}, width{32};
    std::atomic<unsigned> mask{0};
    std::atomic<uint64_t> val{0}, res{0};
#if TSAN
    void *fiber = nullptr;
    bool entered = false;
#endif
};

namespace {

std::atomic<Invoker> g_kernel{nullptr};
std::atomic<const uint64_t *> g_args{nullptr};
#if DSX_FAST_SWITCH
void *sched_sp;
#else
ucontext_t sched_ctx;
#endif
std::vector<Thread *> pool;
#if TSAN
void *sched_fiber;
#endif
// launch_sync orders each block after the previous one (and the scheduler's
// poisoning of shared memory before the block); barrier_sync is
// __syncthreads.
char launch_sync, barrier_sync;

inline void tsan_release(void *p) {
#if TSAN
    __tsan_release(p);
#else
    (void)p;
#endif
}
inline void tsan_acquire(void *p) {
#if TSAN
    __tsan_acquire(p);
#else
    (void)p;
#endif
}

// Registered __shared__ variables: lock-free, relaxed (fibers register,
// the scheduler fills).
const int kMaxShared = 512;
std::atomic<void *> shared_p[kMaxShared];
std::atomic<size_t> shared_n[kMaxShared];
std::atomic<int> shared_count{0};
// shared_used[i] is the last launch whose threads declared variable i; only
// those are refilled before a block, and after their launch.
std::atomic<uint64_t> shared_used[kMaxShared];
std::atomic<uint64_t> launch_no{1};

void poison_shared(uint64_t launch) {
    int c = shared_count.load(std::memory_order_relaxed);
    for (int i = 0; i < c; i++) {
        if (shared_used[i].load(std::memory_order_relaxed) == launch) memset(shared_p[i].load(), 0xff, shared_n[i].load());
    }
}

// Dynamic shared memory: kDyn bytes that end at a PROT_NONE page.
const size_t kDyn = 48 << 10;
unsigned char *dyn_end;

// The block's run queue and what its threads wait for (run_block). On
// x86-64 without ThreadSanitizer a thread that must wait hands the CPU
// straight to the next queued thread (one switch instead of two through the
// scheduler); the scheduler runs only when the queue is empty.
std::vector<int> run_queue, touched;
size_t run_pos;
std::vector<int> waiting;
std::vector<char> is_touched;
int n_bar, n_inwarp;
uint64_t block_gen;

void start_at_trampoline(Thread *t);

// note counts what t now waits for.
void note(Thread *t) {
    const int w = t->index / 32;
    switch (t->state.load(std::memory_order_relaxed)) {
    case BAR: n_bar++; break;
    case WARP:
        waiting[w]++;
        n_inwarp++;
        if (!is_touched[w]) {
            is_touched[w] = 1;
            touched.push_back(w);
        }
        break;
    case DONE:
        if (waiting[w] && !is_touched[w]) {  // lanes that wait for it now never can
            is_touched[w] = 1;
            touched.push_back(w);
        }
        break;
    }
}

// enter makes t the running thread, starting it on a fresh stack the first
// time in the block.
inline void enter(Thread *t) {
    if (t->gen != block_gen) {
        t->gen = block_gen;
        t->state.store(RUN, std::memory_order_relaxed);
        start_at_trampoline(t);
    }
    const unsigned Bx = g_Bx.load(std::memory_order_relaxed);
    current.store(t, std::memory_order_relaxed);
    cur_tx.store((unsigned)t->index % Bx, std::memory_order_relaxed);
    cur_ty.store((unsigned)t->index / Bx, std::memory_order_relaxed);
}

// yield: t waits (its state says for what); the next queued thread runs, or
// the scheduler.
// (Under ThreadSanitizer the scheduler notes it, after the switch: the
// fibers touch none of its plain memory, which would race.)
void yield(Thread *t) {
#if !TSAN
    note(t);
#endif
#if DSX_FAST_SWITCH && !TSAN
    if (run_pos < run_queue.size()) {
        Thread *n = pool[run_queue[run_pos++]];
        enter(n);
        dsx_switch(&t->sp, n->sp);
        return;
    }
#endif
#if TSAN
    __tsan_switch_to_fiber(sched_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#if DSX_FAST_SWITCH
    dsx_switch(&t->sp, sched_sp);
#else
    swapcontext(&t->ctx, &sched_ctx);
#endif
}

// switch_to runs t from the scheduler.
void switch_to(Thread *t) {
    enter(t);
#if DSX_FAST_SWITCH
    void *sp = t->sp;
#endif
#if TSAN
    // The first entry of a fiber synchronises (it starts from the
    // scheduler's state, which holds no other fiber's); later ones do not.
    // (From this call on TSan counts what runs as the fiber's.)
    const unsigned flags = t->entered ? __tsan_switch_to_fiber_no_sync : 0;
    t->entered = true;
    __tsan_switch_to_fiber(t->fiber, flags);
#endif
#if DSX_FAST_SWITCH
    dsx_switch(&sched_sp, sp);
#else
    swapcontext(&sched_ctx, &t->ctx);
#endif
#if TSAN
    note(t);
#endif
}

void trampoline() {
    Thread *t = (Thread *)current.load(std::memory_order_relaxed);
    tsan_acquire(&launch_sync);
    g_kernel.load(std::memory_order_relaxed)(g_args.load(std::memory_order_relaxed));
    tsan_release(&launch_sync);
    t->state.store(DONE, std::memory_order_relaxed);
    yield(t);
    abort();  // never resumed
}

// start_at_trampoline makes t's next switch_to enter trampoline on a
// fresh stack.
void start_at_trampoline(Thread *t) {
#if DSX_FAST_SWITCH
    // What dsx_switch pops: six registers, then trampoline as the return
    // address, above it a zero return address so that trampoline starts
    // with the stack aligned as after a call.
    uint64_t *sp = (uint64_t *)(t->stack + t->stack_size - t->colour);
    *--sp = 0;
    *--sp = (uint64_t)(void *)trampoline;
    for (int i = 0; i < 6; i++) *--sp = 0;
    t->sp = sp;
#else
    getcontext(&t->ctx);
    t->ctx.uc_stack.ss_sp = t->stack;
    t->ctx.uc_stack.ss_size = t->stack_size;
    t->ctx.uc_link = nullptr;
    makecontext(&t->ctx, trampoline, 0);
#endif
}

Thread *new_thread(int index) {
    Thread *t = new Thread;
    t->index = index;
    long page = sysconf(_SC_PAGESIZE);
    t->stack_size = TSAN ? (1 << 20) : (256 << 10);
    void *m = mmap(nullptr, t->stack_size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        perror("harness: mmap of a fiber stack");
        exit(2);
    }
    mprotect(m, page, PROT_NONE);  // a stack overflow faults
    t->stack = (unsigned char *)m + page;
    t->colour = (size_t)(index * 1088) % (32 << 10);
#if TSAN
    t->fiber = __tsan_create_fiber(0);
#endif
    return t;
}

const char *op_name(int op) {
    switch (op) {
    case SHFL_IDX: return "__shfl_sync";
    case SHFL_DOWN: return "__shfl_down_sync";
    case SHFL_XOR: return "__shfl_xor_sync";
    case ANY: return "__any_sync";
    }
    return "?";
}

std::string where(const Thread *t) {
    char b[96];
    const unsigned Bx = g_Bx.load();
    snprintf(b, sizeof b, "thread (%u, %u) (warp %d lane %d)", (unsigned)t->index % Bx, (unsigned)t->index / Bx, t->index / 32, t->index % 32);
    return b;
}

std::string describe(int n) {
    std::string s;
    for (int i = 0; i < n; i++) {
        Thread *t = pool[i];
        int st = t->state.load();
        const char *what = st == BAR ? "__syncthreads" : st == DONE ? "exited" : st == WARP ? op_name(t->op.load()) : "running";
        // one line per run of threads in the same state
        int j = i;
        while (j + 1 < n && pool[j + 1]->state.load() == st && (st != WARP || pool[j + 1]->op.load() == t->op.load())) j++;
        char b[128];
        snprintf(b, sizeof b, "\n  threads %d..%d: %s", i, j, what);
        s += b;
        i = j;
    }
    return s;
}

// resolve_warp completes warp w's exchange if every lane of its mask has
// reached it, queueing the lanes it lets go (in lane order, or reversed);
// returns how many, 0 if it must wait, -1 on error.
int resolve_warp(int w, int n, std::string &err, bool reverse, std::vector<int> &queue) {
    int lo = 32 * w, hi = std::min(lo + 32, n);
    Thread *first = nullptr;
    for (int i = lo; i < hi; i++) {
        if (pool[i]->state.load(std::memory_order_relaxed) == WARP) {
            first = pool[i];
            break;
        }
    }
    if (!first) return 0;
    const int op = first->op.load(), size = first->size.load(), width = first->width.load();
    const unsigned mask = first->mask.load();
    for (int i = lo; i < hi; i++) {
        Thread *t = pool[i];
        if (t->state.load() != WARP) continue;
        if (t->op.load() != op || t->mask.load() != mask || t->size.load() != size) {
            err = "lanes of warp " + std::to_string(w) + " at different exchanges: " + where(first) + " at " + op_name(op) +
                  ", " + where(t) + " at " + op_name(t->op.load());
            return -1;
        }
        if (!(mask >> (i - lo) & 1)) {
            err = where(t) + " at " + op_name(op) + " with a mask that leaves its own lane out";
            return -1;
        }
    }
    if (width != 32) {
        err = std::string(op_name(op)) + " with width " + std::to_string(width) + ": the shim has warps of 32 only";
        return -1;
    }
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1)) continue;
        if (lo + l >= n) {
            char b[64];
            snprintf(b, sizeof b, "%#x", mask);
            err = std::string(op_name(op)) + " with mask " + b + " names lane " + std::to_string(l) + " of warp " +
                  std::to_string(w) + ", which does not exist (a block of " + std::to_string(n) + " threads)";
            return -1;
        }
        int st = pool[lo + l]->state.load();
        if (st == DONE) {
            err = where(first) + " at " + op_name(op) + ": lane " + std::to_string(l) + " of its mask has exited";
            return -1;
        }
        if (st != WARP) return 0;  // still to come (or at a barrier: a deadlock, found by the caller)
    }
    uint64_t vals[32] = {0};
    for (int l = 0; l < hi - lo; l++) vals[l] = pool[lo + l]->val.load(std::memory_order_relaxed);
    uint64_t any = 0;
    for (int l = 0; l < 32; l++) {
        if (mask >> l & 1) any |= vals[l];
    }
    int released = 0;
    for (int k = 0; k < 32; k++) {
        const int l = reverse ? 31 - k : k;
        if (!(mask >> l & 1)) continue;
        Thread *t = pool[lo + l];
        int arg = t->arg.load(), src = l;
        switch (op) {
        case SHFL_IDX: src = arg & 31; break;
        case SHFL_DOWN: src = l + arg < 32 ? l + arg : l; break;
        case SHFL_XOR: src = (l ^ arg) & 31; break;
        }
        if (op != ANY && !(mask >> src & 1)) {
            err = where(t) + " reads lane " + std::to_string(src) + " in " + op_name(op) + ", which is not in the mask";
            return -1;
        }
        t->res.store(op == ANY ? (any != 0) : vals[src], std::memory_order_relaxed);
        t->state.store(RUN, std::memory_order_relaxed);
        queue.push_back(lo + l);
        released++;
    }
    return released;
}

// run_block runs the block's n threads to their end: the runnable ones in
// order (a queue), then the warp exchanges whose lanes have all arrived,
// then, when every thread that has not exited waits at __syncthreads, the
// barrier. The work is proportional to the waits, not to n per round.
bool run_block(int n, bool reverse, std::string &err) {
    block_gen++;
    const int warps = (n + 31) / 32;
    run_queue.clear();
    touched.clear();
    waiting.assign(warps, 0);
    is_touched.assign(warps, 0);
    for (int k = 0; k < n; k++) run_queue.push_back(reverse ? n - 1 - k : k);
    n_bar = n_inwarp = 0;
    for (;;) {
        run_pos = 0;
        while (run_pos < run_queue.size()) switch_to(pool[run_queue[run_pos++]]);
        run_queue.clear();
        for (int w : touched) {
            is_touched[w] = 0;
            if (waiting[w] == 0) continue;
            int r = resolve_warp(w, n, err, reverse, run_queue);
            if (r < 0) return false;
            waiting[w] -= r;
            n_inwarp -= r;
        }
        touched.clear();
        if (!run_queue.empty()) continue;
        if (n_inwarp > 0) {
            err = "deadlock: threads wait at a warp exchange that some lanes of its mask never reach" + describe(n);
            return false;
        }
        if (n_bar == 0) return true;  // every thread exited
        for (int k = 0; k < n; k++) {
            const int i = reverse ? n - 1 - k : k;
            if (pool[i]->state.load(std::memory_order_relaxed) == BAR) {
                pool[i]->state.store(RUN, std::memory_order_relaxed);
                run_queue.push_back(i);
            }
        }
        n_bar = 0;
    }
}

struct KernelEntry {
    const char *name;
    int nargs;
    Invoker f;
};
std::vector<KernelEntry> &kernels() {
    static std::vector<KernelEntry> k;
    return k;
}

}  // namespace

void register_kernel(const char *name, int nargs, Invoker f) { kernels().push_back({name, nargs, f}); }


void syncthreads() {
    Thread *t = (Thread *)current.load(std::memory_order_relaxed);
    tsan_release(&barrier_sync);
    t->state.store(BAR, std::memory_order_relaxed);
    yield(t);
    tsan_acquire(&barrier_sync);
}

uint64_t warp_op(int op, unsigned mask, uint64_t bits, int size, int arg, int width) {
    Thread *t = (Thread *)current.load(std::memory_order_relaxed);
    t->op.store(op, std::memory_order_relaxed);
    t->mask.store(mask, std::memory_order_relaxed);
    t->val.store(bits, std::memory_order_relaxed);
    t->size.store(size, std::memory_order_relaxed);
    t->arg.store(arg, std::memory_order_relaxed);
    t->width.store(width, std::memory_order_relaxed);
    t->state.store(WARP, std::memory_order_relaxed);
    yield(t);
    return t->res.load(std::memory_order_relaxed);
}

void register_shared(void *p, size_t n, const char *) {
    const uint64_t l = launch_no.load(std::memory_order_relaxed);
    int c = shared_count.load(std::memory_order_relaxed);
    for (int i = 0; i < c; i++) {
        if (shared_p[i].load(std::memory_order_relaxed) == p) {
            shared_used[i].store(l, std::memory_order_relaxed);
            return;
        }
    }
    if (c == kMaxShared) return;
    // The first block of the variable's first launch gets it filled here,
    // by the first thread to declare it (before any thread uses it); later
    // blocks get it refilled by the scheduler. (ThreadSanitizer is told to
    // overlook this write, which no barrier orders before the others.)
#if TSAN
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
    memset(p, 0xff, n);
#if TSAN
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
#endif
    shared_p[c].store(p, std::memory_order_relaxed);
    shared_n[c].store(n, std::memory_order_relaxed);
    shared_used[c].store(l, std::memory_order_relaxed);
    shared_count.store(c + 1, std::memory_order_relaxed);
}

// launch runs kernel f over the grid, a block at a time.
bool launch(Invoker f, const uint64_t *args, unsigned gx, unsigned gy, unsigned bx, unsigned by, uint64_t shmem,
            bool reverse, std::string &err) {
    const uint64_t n = (uint64_t)bx * by;
    if (bx < 1 || by < 1 || n > 1024 || gx < 1 || gy < 1 || gy > 65535 || gx > 2147483647u) {
        err = "launch geometry out of CUDA's limits: grid (" + std::to_string(gx) + ", " + std::to_string(gy) + "), block (" +
              std::to_string(bx) + ", " + std::to_string(by) + ")";
        return false;
    }
    if (shmem > kDyn) {
        err = std::to_string(shmem) + " bytes of dynamic shared memory, past the 48 KiB a launch gets without opting in";
        return false;
    }
    while (pool.size() < n) pool.push_back(new_thread((int)pool.size()));
    g_kernel.store(f, std::memory_order_relaxed);
    g_args.store(args, std::memory_order_relaxed);
    g_Bx.store(bx);
    g_By.store(by);
    g_Gx.store(gx);
    g_Gy.store(gy);
    unsigned char *dyn = dyn_end - ((shmem + 15) & ~(uint64_t)15);
    g_dyn.store(dyn, std::memory_order_relaxed);
    const uint64_t launch = launch_no.fetch_add(1, std::memory_order_relaxed) + 1;
    for (unsigned y = 0; y < gy; y++) {
        for (unsigned x = 0; x < gx; x++) {
            g_bx.store(x, std::memory_order_relaxed);
            g_by.store(y, std::memory_order_relaxed);
            // Fresh shared memory is garbage: NaN bytes.
            tsan_acquire(&launch_sync);
            memset(dyn, 0xff, dyn_end - dyn);
            poison_shared(launch);
            tsan_release(&launch_sync);
            if (!run_block((int)n, reverse, err)) {
                err = "block (" + std::to_string(x) + ", " + std::to_string(y) + "): " + err;
                return false;
            }
        }
    }
    tsan_acquire(&launch_sync);
    poison_shared(launch);
    return true;
}

}  // namespace dsx

// ---- the program ----

namespace {

struct Mapping {
    uint64_t addr, len, start, bytes;
};
std::vector<Mapping> maps;
const char *volatile running = "";

void put(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

void on_fault(int sig, siginfo_t *si, void *) {
    char b[512];
    uint64_t a = (uint64_t)si->si_addr;
    const char *what = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "signal";
    int n = snprintf(b, sizeof b, "harness: %s in kernel %s at address %#llx", what, running, (unsigned long long)a);
    dsx::Thread *t = (dsx::Thread *)dsx::current.load(std::memory_order_relaxed);
    if (t) {
        n += snprintf(b + n, sizeof b - n, ", block (%u, %u), thread (%u, %u)", dsx::g_bx.load(), dsx::g_by.load(),
                      dsx::cur_tx.load(), dsx::cur_ty.load());
    }
    bool found = false;
    for (size_t i = 0; i < maps.size() && n < (int)sizeof b - 100; i++) {
        const Mapping &m = maps[i];
        if (a >= m.addr && a < m.addr + (1ull << 32)) {
            long long off = (long long)(a - m.start);
            n += snprintf(b + n, sizeof b - n, ": byte %lld of buffer %zu, which has %llu bytes", off, i,
                          (unsigned long long)m.bytes);
            found = true;
        }
    }
    if (!found && dsx::g_dyn.load() && a >= (uint64_t)dsx::g_dyn.load() && a < (uint64_t)dsx::dyn_end + 4096) {
        n += snprintf(b + n, sizeof b - n, ": past the launch's dynamic shared memory");
    }
    snprintf(b + n, sizeof b - n, "\n");
    put(b);
    _exit(3);
}

void on_cpu_limit(int) {
    put("harness: kernel ");
    put(running);
    put(" ran past its CPU limit (DSX_CPU_LIMIT): an endless loop?\n");
    _exit(3);
}

bool read_all(void *p, size_t n) {
    unsigned char *b = (unsigned char *)p;
    while (n > 0) {
        ssize_t r = read(0, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        b += r;
        n -= r;
    }
    return true;
}

void write_all(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    while (n > 0) {
        ssize_t r = write(1, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) _exit(2);
        b += r;
        n -= r;
    }
}

void reply(bool ok, const std::string &msg) {
    uint32_t h[2] = {ok ? 0u : 1u, (uint32_t)msg.size()};
    write_all(h, sizeof h);
    write_all(msg.data(), msg.size());
}

uint32_t u32() {
    uint32_t v;
    if (!read_all(&v, 4)) _exit(0);
    return v;
}
uint64_t u64() {
    uint64_t v;
    if (!read_all(&v, 8)) _exit(0);
    return v;
}

}  // namespace

int main() {
    // A stack of its own for the fault handler: a fault may be a fiber's
    // stack overflow.
    stack_t ss;
    ss.ss_size = 1 << 16;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    signal(SIGPROF, on_cpu_limit);
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *dm = (unsigned char *)mmap(nullptr, dsx::kDyn + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dm == MAP_FAILED) return 2;
    mprotect(dm + dsx::kDyn, page, PROT_NONE);
    dsx::dyn_end = dm + dsx::kDyn;
#if TSAN
    dsx::sched_fiber = __tsan_get_current_fiber();
#endif
    const char *lim = getenv("DSX_CPU_LIMIT");
    const long cpu_limit = lim ? atol(lim) : 600;

    for (;;) {
        uint32_t op = u32();
        if (op == 3) return 0;
        if (op == 1) {
            uint32_t n = u32();
            std::string err;
            for (uint32_t i = 0; i < n; i++) {
                Mapping m;
                m.addr = u64();
                uint64_t off = u64();
                m.len = u64();
                m.start = u64();
                m.bytes = u64();
                void *p = mmap((void *)m.addr, m.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, 3, (off_t)off);
                if (p != (void *)m.addr && err.empty()) {
                    err = "mmap of buffer " + std::to_string(maps.size()) + " at " + std::to_string(m.addr) + ": " + strerror(errno);
                    if (p != MAP_FAILED) munmap(p, m.len);
                }
                maps.push_back(m);
            }
            reply(err.empty(), err);
            continue;
        }
        if (op != 2) {
            reply(false, "unknown request " + std::to_string(op));
            return 2;
        }
        std::string name(u32(), '\0');
        if (!read_all(&name[0], name.size())) return 0;
        uint32_t gx = u32(), gy = u32(), bx = u32(), by = u32();
        uint64_t shmem = u64();
        std::vector<uint64_t> args(u32());
        for (auto &a : args) a = u64();
        uint32_t flags = u32();
        const dsx::KernelEntry *k = nullptr;
        for (const auto &e : dsx::kernels()) {
            if (name == e.name) k = &e;
        }
        if (!k) {
            reply(false, "no kernel " + name + " in the host build");
            continue;
        }
        if ((int)args.size() != k->nargs) {
            reply(false, name + " takes " + std::to_string(k->nargs) + " parameters; the launch passes " + std::to_string(args.size()));
            continue;
        }
        running = k->name;
        struct itimerval it;
        memset(&it, 0, sizeof it);
        it.it_value.tv_sec = cpu_limit;
        setitimer(ITIMER_PROF, &it, nullptr);
        std::string err;
        bool ok = dsx::launch(k->f, args.data(), gx, gy, bx, by, shmem, flags & 1, err);
        memset(&it, 0, sizeof it);
        setitimer(ITIMER_PROF, &it, nullptr);
        running = "";
        reply(ok, err);
    }
}
