//! `lvslab doctor`: what this machine can do, each gap with its reason and the way out.

use std::process::ExitCode;

pub fn doctor(json: bool) -> anyhow::Result<ExitCode> {
    let features = lvslab_netns::probe();
    if json {
        println!("{}", serde_json::to_string_pretty(&features)?);
    } else {
        let width = features.iter().map(|f| f.name.len()).max().unwrap_or(8);
        for f in &features {
            let mark = if f.available { "ok     " } else { "MISSING" };
            println!("{:width$}  {mark}  {}", f.name, f.detail);
        }
    }
    Ok(ExitCode::SUCCESS)
}
