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
#else
#define TSAN 0
#endif

namespace dsx {

struct Thread {
    ucontext_t ctx;
    unsigned char *stack = nullptr;
    size_t stack_size = 0;
    int index = 0;  // linear index in the block
    // Shared between the fiber and the scheduler: relaxed atomics, so that
    // under ThreadSanitizer they neither race nor order memory.
    std::atomic<unsigned> tx{0}, ty{0};
    std::atomic<int> state{RUN};
    std::atomic<int> op{0}, size{0}, arg{0}, width{32};
    std::atomic<unsigned> mask{0};
    std::atomic<uint64_t> val{0}, res{0};
#if TSAN
    void *fiber = nullptr;
    bool entered = false;
#endif
};

std::atomic<Thread *> current{nullptr};

namespace {

std::atomic<unsigned> g_bx{0}, g_by{0}, g_Bx{1}, g_By{1}, g_Gx{1}, g_Gy{1};
std::atomic<Invoker> g_kernel{nullptr};
std::atomic<const uint64_t *> g_args{nullptr};
std::atomic<unsigned char *> g_dyn{nullptr};
std::atomic<const char *> g_name{""};
ucontext_t sched_ctx;
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

// Dynamic shared memory: kDyn bytes that end at a PROT_NONE page.
const size_t kDyn = 48 << 10;
unsigned char *dyn_end;

void yield_to_scheduler(Thread *t) {
#if TSAN
    __tsan_switch_to_fiber(sched_fiber, __tsan_switch_to_fiber_no_sync);
#endif
    swapcontext(&t->ctx, &sched_ctx);
}

void switch_to(Thread *t) {
    current.store(t, std::memory_order_relaxed);
#if TSAN
    // The first entry of a fiber synchronises (it starts from the
    // scheduler's state, which holds no other fiber's); later ones do not.
    __tsan_switch_to_fiber(t->fiber, t->entered ? __tsan_switch_to_fiber_no_sync : 0);
    t->entered = true;
#endif
    swapcontext(&sched_ctx, &t->ctx);
}

void trampoline() {
    Thread *t = current.load(std::memory_order_relaxed);
    tsan_acquire(&launch_sync);
    g_kernel.load(std::memory_order_relaxed)(g_args.load(std::memory_order_relaxed));
    tsan_release(&launch_sync);
    t->state.store(DONE, std::memory_order_relaxed);
    yield_to_scheduler(t);
    abort();  // never resumed
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
    snprintf(b, sizeof b, "thread (%u, %u) (warp %d lane %d)", t->tx.load(), t->ty.load(), t->index / 32, t->index % 32);
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
// reached it; returns 1 if it did, 0 if it must wait, -1 on error.
int resolve_warp(int w, int n, std::string &err) {
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
    for (int l = 0; l < 32; l++) {
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
    }
    return 1;
}

bool run_block(int n, bool reverse, std::string &err) {
    const unsigned Bx = g_Bx.load();
    for (int i = 0; i < n; i++) {
        Thread *t = pool[i];
        t->tx.store(i % Bx, std::memory_order_relaxed);
        t->ty.store(i / Bx, std::memory_order_relaxed);
        t->state.store(RUN, std::memory_order_relaxed);
        getcontext(&t->ctx);
        t->ctx.uc_stack.ss_sp = t->stack;
        t->ctx.uc_stack.ss_size = t->stack_size;
        t->ctx.uc_link = nullptr;
        makecontext(&t->ctx, trampoline, 0);
    }
    const int warps = (n + 31) / 32;
    for (;;) {
        for (int k = 0; k < n; k++) {
            Thread *t = pool[reverse ? n - 1 - k : k];
            if (t->state.load(std::memory_order_relaxed) == RUN) switch_to(t);
        }
        bool progressed = false;
        for (int w = 0; w < warps; w++) {
            int r = resolve_warp(w, n, err);
            if (r < 0) return false;
            progressed |= r > 0;
        }
        if (progressed) continue;
        int bar = 0, warp = 0;
        for (int i = 0; i < n; i++) {
            int st = pool[i]->state.load(std::memory_order_relaxed);
            bar += st == BAR;
            warp += st == WARP;
        }
        if (warp > 0) {
            err = "deadlock: threads wait at a warp exchange that some lanes of its mask never reach" + describe(n);
            return false;
        }
        if (bar == 0) return true;  // every thread exited
        for (int i = 0; i < n; i++) {
            if (pool[i]->state.load(std::memory_order_relaxed) == BAR) pool[i]->state.store(RUN, std::memory_order_relaxed);
        }
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

uint3 thread_idx() {
    Thread *t = current.load(std::memory_order_relaxed);
    return uint3{t->tx.load(std::memory_order_relaxed), t->ty.load(std::memory_order_relaxed), 0};
}
uint3 block_idx() { return uint3{g_bx.load(std::memory_order_relaxed), g_by.load(std::memory_order_relaxed), 0}; }
uint3 block_dim() { return uint3{g_Bx.load(std::memory_order_relaxed), g_By.load(std::memory_order_relaxed), 1}; }
uint3 grid_dim() { return uint3{g_Gx.load(std::memory_order_relaxed), g_Gy.load(std::memory_order_relaxed), 1}; }
unsigned char *dynamic_shared() { return g_dyn.load(std::memory_order_relaxed); }

void syncthreads() {
    Thread *t = current.load(std::memory_order_relaxed);
    tsan_release(&barrier_sync);
    t->state.store(BAR, std::memory_order_relaxed);
    yield_to_scheduler(t);
    tsan_acquire(&barrier_sync);
}

uint64_t warp_op(int op, unsigned mask, uint64_t bits, int size, int arg, int width) {
    Thread *t = current.load(std::memory_order_relaxed);
    t->op.store(op, std::memory_order_relaxed);
    t->mask.store(mask, std::memory_order_relaxed);
    t->val.store(bits, std::memory_order_relaxed);
    t->size.store(size, std::memory_order_relaxed);
    t->arg.store(arg, std::memory_order_relaxed);
    t->width.store(width, std::memory_order_relaxed);
    t->state.store(WARP, std::memory_order_relaxed);
    yield_to_scheduler(t);
    return t->res.load(std::memory_order_relaxed);
}

void register_shared(void *p, size_t n, const char *) {
    int c = shared_count.load(std::memory_order_relaxed);
    for (int i = 0; i < c; i++) {
        if (shared_p[i].load(std::memory_order_relaxed) == p) return;
    }
    if (c == kMaxShared) return;
    shared_p[c].store(p, std::memory_order_relaxed);
    shared_n[c].store(n, std::memory_order_relaxed);
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
    for (unsigned y = 0; y < gy; y++) {
        for (unsigned x = 0; x < gx; x++) {
            g_bx.store(x, std::memory_order_relaxed);
            g_by.store(y, std::memory_order_relaxed);
            // Fresh shared memory is garbage: NaN bytes.
            tsan_acquire(&launch_sync);
            memset(dyn, 0xff, dyn_end - dyn);
            int c = shared_count.load(std::memory_order_relaxed);
            for (int i = 0; i < c; i++) memset(shared_p[i].load(), 0xff, shared_n[i].load());
            tsan_release(&launch_sync);
            if (!run_block((int)n, reverse, err)) {
                err = "block (" + std::to_string(x) + ", " + std::to_string(y) + "): " + err;
                return false;
            }
        }
    }
    tsan_acquire(&launch_sync);
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
    dsx::Thread *t = dsx::current.load(std::memory_order_relaxed);
    if (t) {
        n += snprintf(b + n, sizeof b - n, ", block (%u, %u), thread (%u, %u)", dsx::g_bx.load(), dsx::g_by.load(),
                      t->tx.load(), t->ty.load());
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
