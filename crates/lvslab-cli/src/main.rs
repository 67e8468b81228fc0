//! `lvslab`: LVS labs in network namespaces.
//!
//! Its one job: parse the command line, call the library that does the work and print
//! what it returns (or write it where asked: reports, pcapng files), with the exit status
//! the subcommand promises. Each subcommand lives in `cmd/`, a thin call into lvslab-spec
//! (lab files), lvslab-instance (up, down, status, exec, ipvsadm), lvslab-harness
//! (trials and reports), lvslab-netns and lvslab-pcap (capture), or lvslab-vm. It must
//! never do a library's job itself: no lab building, netlink, packet judging or lifecycle
//! logic here, so `cargo test` and the command line always run the same code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lvslab_spec::Dataplane;

mod cmd;

/// Exit status for invalid input (lab files, arguments), as `lvslab check` promises.
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(name = "lvslab", version, about = "LVS (Linux Virtual Server) labs in network namespaces: NAT, DR, TUN, FullNAT", long_about = None)]
struct Cli {
    /// Folder holding the labs (default: ./labs, else the labs shipped with this build).
    #[arg(long, global = true, env = "LVSLAB_LABS")]
    labs: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormatArg {
    Mermaid,
    Dot,
}

/// `--dataplane kernel|userspace`, parsed into the one `Dataplane` of lvslab-spec.
fn dataplane_parser() -> impl clap::builder::TypedValueParser<Value = Dataplane> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["kernel", "userspace"])
        .try_map(|s| s.parse::<Dataplane>())
}

#[derive(Subcommand)]
enum VmAction {
    /// Download the newest Debian linux-image-*-amd64 (cached) and build its initramfs.
    Fetch,
    /// Run a command in the VM and return its exit status: `lvslab vm run -- lvslab up nat --dataplane kernel`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive shell in the VM (Ctrl-A x quits).
    Shell,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a lab file; errors name file:line:col, the field and the fix (exit 2).
    Check {
        /// Lab name (nat, dr, tun, fullnat) or path to a lab folder or lab.toml.
        lab: String,
        /// Set a lab parameter, e.g. `--param encap=ipip`.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Print the JSON Schema of lab.toml.
    Schema,
    /// Print the `ip`/`sysctl`/`nft` commands that build the lab (`lvslab plan nat | bash`).
    Plan {
        lab: String,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Which dataplane the lab is built for (decides how real servers decapsulate).
        #[arg(long, value_parser = dataplane_parser())]
        dataplane: Option<Dataplane>,
        /// Print the commands that remove the lab instead.
        #[arg(long)]
        down: bool,
        /// Print the plan as JSON steps.
        #[arg(long)]
        json: bool,
    },
    /// Draw the topology (nodes, links, addresses, VIP, reply path).
    Graph {
        lab: String,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormatArg,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Build a lab instance and leave it running.
    Up {
        lab: String,
        /// Instance name (default: the lab's name); two instances run side by side.
        #[arg(long)]
        instance: Option<String>,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Default: kernel where the kernel has IPVS, else userspace.
        #[arg(long, value_parser = dataplane_parser())]
        dataplane: Option<Dataplane>,
    },
    /// Remove a lab instance (also after an interrupted `up`), or every instance.
    Down {
        #[arg(required_unless_present = "all")]
        instance: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// List running instances.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a command on a node of an instance: `lvslab exec nat client -- ping -c1 198.51.100.2`.
    Exec {
        instance: String,
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open a shell on a node of an instance.
    Shell { instance: String, node: String },
    /// What this machine can do: root, netns, veth, bridge, ipip, gre, ipvs, nft, …
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Run the lab trials (the main job), print a summary and write reports.
    Test {
        /// Labs to test (default: all).
        labs_to_test: Vec<String>,
        /// Which dataplane trials run; `all` also runs the topology and plan-replay trials.
        #[arg(long, value_enum, default_value = "all")]
        dataplane: cmd::test::DataplaneChoice,
        /// Where the reports go (default: captures/<run>/).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Capture one interface of a running instance: `lvslab capture nat director:eth0 -w d.pcapng`.
    Capture {
        instance: String,
        /// Capture point `node:iface`.
        point: String,
        /// Also write the frames to this pcapng file.
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: Option<PathBuf>,
        /// Stop after this many frames.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// Do not print a line per frame.
        #[arg(short, long)]
        quiet: bool,
    },
    /// ipvsadm's own syntax against an instance's director: `lvslab ipvsadm --instance nat -L -n`.
    #[command(disable_help_flag = true)]
    Ipvsadm {
        #[arg(long)]
        instance: String,
        /// Director node (default: the lab's first director).
        #[arg(long)]
        director: Option<String>,
        /// ipvsadm arguments, as ipvsadm takes them (`-A -t 192.168.80.10:80 -s wrr`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The userspace director's counters of an instance, drops by reason included.
    Stats { instance: String },
    /// Send requests through a running lab and count which real server answered.
    Traffic {
        instance: String,
        /// Sending node (default: the lab's [traffic] entry).
        #[arg(long)]
        from: Option<String>,
        /// Target address or node:iface (default: the lab's [traffic] entry).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value_t = 10)]
        count: u64,
        #[arg(long, default_value = "tcp")]
        proto: String,
        /// Print `{"ok": N, "failed": N, "by_server": {...}}`.
        #[arg(long)]
        json: bool,
    },
    /// A Debian kernel with IPVS, ipip and gre under qemu, sharing this machine's files.
    Vm {
        #[command(subcommand)]
        action: VmAction,
    },
    /// Internal: run one trial by name (kernel trials run this inside the VM).
    #[command(hide = true)]
    Trial { name: String },
    /// Internal: the background process of an instance (servers, userspace engine).
    #[command(hide = true)]
    Daemon { instance: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LVSLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let labs = cmd::labs_dir(cli.labs.as_deref());
    let result = match cli.command {
        Command::Check { lab, params } => cmd::lab::check(&labs, &lab, &params),
        Command::Schema => cmd::lab::schema(),
        Command::Plan {
            lab,
            instance,
            params,
            dataplane,
            down,
            json,
        } => cmd::lab::plan(
            &labs,
            &lab,
            instance.as_deref(),
            &params,
            dataplane,
            down,
            json,
        ),
        Command::Graph {
            lab,
            format,
            params,
        } => cmd::lab::graph(&labs, &lab, format, &params),
        Command::Up {
            lab,
            instance,
            params,
            dataplane,
        } => cmd::lifecycle::up(&labs, &lab, instance.as_deref(), &params, dataplane),
        Command::Down { instance, all } => cmd::lifecycle::down(instance.as_deref(), all),
        Command::Status { json } => cmd::lifecycle::status(json),
        Command::Exec {
            instance,
            node,
            command,
        } => cmd::lifecycle::exec(&instance, &node, &command),
        Command::Shell { instance, node } => cmd::lifecycle::shell(&instance, &node),
        Command::Doctor { json } => cmd::doctor::doctor(json),
        Command::Test {
            labs_to_test,
            dataplane,
            report,
        } => cmd::test::test(&labs, &labs_to_test, dataplane, report.as_deref()),
        Command::Capture {
            instance,
            point,
            write,
            count,
            seconds,
            quiet,
        } => cmd::capture::capture(&cmd::capture::CaptureArgs {
            instance: &instance,
            point: &point,
            write: write.as_deref(),
            count,
            seconds,
            quiet,
        }),
        Command::Ipvsadm {
            instance,
            director,
            args,
        } => cmd::ipvsadm::ipvsadm(&instance, director.as_deref(), &args),
        Command::Traffic {
            instance,
            from,
            to,
            port,
            count,
            proto,
            json,
        } => cmd::traffic::traffic(&cmd::traffic::TrafficArgs {
            instance: &instance,
            from: from.as_deref(),
            to: to.as_deref(),
            port,
            count,
            proto: &proto,
            json,
        }),
        Command::Vm { action } => match action {
            VmAction::Fetch => cmd::vm::fetch(),
            VmAction::Run { command } => cmd::vm::run(&command),
            VmAction::Shell => cmd::vm::shell(),
        },
        Command::Trial { name } => cmd::test::trial(&labs, &name),
        Command::Daemon { instance } => lvslab_instance::daemon::run(&instance)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Stats { instance } => cmd::ipvsadm::stats(&instance),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvslab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
