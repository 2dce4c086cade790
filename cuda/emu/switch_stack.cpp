// emu_switch_stack(save_sp, next_sp) for x86-64 (System V): pushes the callee-saved registers,
// stores the stack pointer in *save_sp, loads next_sp and pops the next fiber's registers; the
// final ret resumes that fiber where it called emu_switch_stack (or enters it, see fiber.h).
#if defined(__x86_64__)
asm(R"(
  .pushsection .text
  .globl emu_switch_stack
  .hidden emu_switch_stack
  .type emu_switch_stack, @function
emu_switch_stack:
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
  .size emu_switch_stack, .-emu_switch_stack
  .popsection
)");
#endif
