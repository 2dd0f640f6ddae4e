//! A kernel that lies in one way at a time (issue 16, Deliver 2). A seccomp
//! filter, installed in orphanage before exec and so binding every agent it
//! starts, makes one syscall answer falsely without doing its work. The
//! scenarios whose `checks:` line that lie breaks must come out as fail (by a
//! check, or by the deadline when what they wait for never happens), and the
//! rest of the areas run must still pass: the lie is caught exactly where it
//! matters. (tests/selftest.rs does the same for a kernel that lacks
//! pidfd_open and clone3, where the answer is unsupported instead.)
//!
//! Every trial needs CAP_SYS_ADMIN: the areas lied to must pass but for the
//! lie, and their pid-namespace scenarios cannot run without it (the forged
//! senders also enter the agent's pid namespace). Without it they are
//! ignored, naming it.
//!
//! The filters are written for x86_64 (its syscall numbers, audit arch and
//! siginfo layout): elsewhere the one trial says so, ignored.

mod common;
#[cfg(target_arch = "x86_64")]
#[path = "lies/on_x86_64.rs"]
mod on_x86_64;
#[cfg(target_arch = "x86_64")]
#[path = "lies/user_notification.rs"]
mod user_notification;

#[cfg(target_arch = "x86_64")]
fn main() {
    on_x86_64::main()
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let trial = common::cannot_run(
        "the_lies",
        format!(
            "the lying filters are written for x86_64, not {}",
            std::env::consts::ARCH
        ),
        "needs x86_64".into(),
    );
    libtest_mimic::run(&args, vec![trial]).exit();
}
