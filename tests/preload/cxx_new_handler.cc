/* cxx_new_handler.cc - operator new's failure path under mempool: bad_alloc
 * from the throwing forms, NULL from the nothrow forms (even when the
 * new_handler throws bad_alloc, which a nothrow new must swallow), the
 * handler called before giving up, and aligned new/delete. */
#include <new>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
static int calls;
static void handler_throw() { calls++; throw std::bad_alloc(); }
static void handler_giveup() { calls++; std::set_new_handler(nullptr); }
int main() {
    volatile size_t huge = SIZE_MAX / 2;
    int fails = 0; setvbuf(stdout, NULL, _IONBF, 0);
    /* 1: throwing new without handler throws bad_alloc */
    try { void *p = ::operator new(huge); std::printf("FAIL new returned %p\n", p); fails++; }
    catch (const std::bad_alloc &) { std::printf("ok: new(huge) threw bad_alloc\n"); }
    /* 2: nothrow new without handler returns NULL */
    { void *p = ::operator new(huge, std::nothrow); std::printf("%s: new(huge, nothrow) = %p\n", p ? "FAIL" : "ok", p); fails += p != nullptr; }
    /* 3: handler called then removed -> bad_alloc */
    calls = 0; std::set_new_handler(handler_giveup);
    try { void *p = ::operator new(huge); std::printf("FAIL %p\n", p); fails++; }
    catch (const std::bad_alloc &) { std::printf("ok: handler called %d time(s), then bad_alloc\n", calls); }
    /* 4: aligned */
    calls = 0; std::set_new_handler(handler_giveup);
    try { void *p = ::operator new(huge, std::align_val_t(64)); std::printf("FAIL %p\n", p); fails++; }
    catch (const std::bad_alloc &) { std::printf("ok: aligned: handler called %d time(s), then bad_alloc\n", calls); }
    /* 5: nothrow with a handler that throws bad_alloc: must return NULL, not throw */
    calls = 0; std::set_new_handler(handler_throw);
    try {
        void *p = ::operator new(huge, std::nothrow);
        std::printf("ok: nothrow new with throwing handler returned %p (handler calls %d)\n", p, calls);
    } catch (const std::bad_alloc &) {
        std::printf("FAIL: operator new(size_t, nothrow_t) threw bad_alloc (handler calls %d)\n", calls); fails++;
    }
    calls = 0;
    try {
        void *p = ::operator new[](huge, std::align_val_t(64), std::nothrow);
        std::printf("ok: aligned nothrow new[] with throwing handler returned %p\n", p);
    } catch (const std::bad_alloc &) {
        std::printf("FAIL: operator new[](size_t, align_val_t, nothrow_t) threw bad_alloc (handler calls %d)\n", calls); fails++;
    }
    std::set_new_handler(nullptr);
    /* 6: aligned new basics */
    for (size_t a = 16; a <= (1u << 24); a <<= 1) {
        void *p = ::operator new(100, std::align_val_t(a));
        if ((uintptr_t)p & (a - 1)) { std::printf("FAIL aligned new %zu\n", a); fails++; }
        ::operator delete(p, 100, std::align_val_t(a));
    }
    int *q = new int[1000]; delete[] q;
    struct D { ~D() {} int x; }; D *d = new D[10]; delete[] d;
    std::printf("%d failures\n", fails);
    return fails != 0;
}
