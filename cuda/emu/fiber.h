// Switching between fibers (user-space threads) of the emulation. On x86-64 a switch saves the
// callee-saved registers on the old stack and swaps stack pointers: a few nanoseconds, where
// ucontext's swapcontext makes a signal-mask system call each time (about a microsecond, which
// made the emulated warp shuffles 100x slower). Other architectures use ucontext.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__x86_64__)

extern "C" void emu_switch_stack(void** save_sp, void* next_sp) __attribute__((visibility("hidden")));

namespace emu {

struct FiberContext {
  void* sp = nullptr;
};

// Saves the running fiber into `from` and resumes `to`.
inline void switch_fiber(FiberContext& from, FiberContext& to) { emu_switch_stack(&from.sp, to.sp); }

// Prepares `fiber` to run entry() on the given stack when first switched to: the stack is laid out
// as emu_switch_stack leaves a suspended fiber, with entry as the return address and a zero
// above it standing for entry's own return address (entry never returns).
inline void start_fiber(FiberContext& fiber, void* stack, size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<void**>((reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15));
  *--top = nullptr;
  *--top = reinterpret_cast<void*>(entry);
  for (int saved_register = 0; saved_register < 6; saved_register++) *--top = nullptr;
  fiber.sp = top;
}

}  // namespace emu

#else

#include <ucontext.h>

namespace emu {

struct FiberContext {
  ucontext_t context;
};

inline void switch_fiber(FiberContext& from, FiberContext& to) { swapcontext(&from.context, &to.context); }

inline void start_fiber(FiberContext& fiber, void* stack, size_t bytes, void (*entry)()) {
  getcontext(&fiber.context);
  fiber.context.uc_stack.ss_sp = stack;
  fiber.context.uc_stack.ss_size = bytes;
  fiber.context.uc_link = nullptr;
  makecontext(&fiber.context, entry, 0);
}

}  // namespace emu

#endif
