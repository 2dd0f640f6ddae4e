//! orphanage-agent: the in-target half of orphanage. Built statically, so the
//! same file runs on the host, inside a container and as a VM's /init.
//!
//! `orphanage-agent run` reads a scenario (JSON) on stdin and reports events
//! on fd 3; `orphanage-agent worker NAME FD SIGPIPE` is how a scenario process
//! that ran an `exec` step becomes a worker again.

mod controller;
mod fds;
mod handles;
mod measure;
mod memfd;
mod poll;
mod probe;
mod procfs;
mod protocol;
mod signals;
mod spawn;
mod steps;
mod worker;

fn main() {
    worker::install_panic_hook();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => controller::main(),
        Some("worker") if args.len() == 5 => match args[3].parse() {
            Ok(fd) => worker::serve_execed(&args[2], fd, args[4] == "sigpipe-ignored"),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: orphanage-agent run   (scenario JSON on stdin, events on fd 3)\n       orphanage-agent worker NAME FD sigpipe-ignored|sigpipe-default");
    std::process::exit(2)
}
