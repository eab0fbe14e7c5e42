//! Hostfiles: one `host:port` per line, one line per process, in process-index order.

use anyhow::{bail, Context, Result};

/// Reads a hostfile; blank lines and `#` comments are ignored.
pub fn read_hostfile(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read hostfile {}", path.display()))?;
    parse_hostfile(&text).with_context(|| format!("bad hostfile {}", path.display()))
}

/// Parses hostfile text.
pub fn parse_hostfile(text: &str) -> Result<Vec<String>> {
    let mut hosts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((host, port)) = line.rsplit_once(':') else {
            bail!("line {}: expected host:port, got '{line}'", number + 1);
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            bail!("line {}: expected host:port, got '{line}'", number + 1);
        }
        hosts.push(line.to_string());
    }
    if hosts.is_empty() {
        bail!("no hosts listed");
    }
    Ok(hosts)
}

/// Writes a hostfile for `hosts`.
pub fn format_hostfile(hosts: &[String]) -> String {
    let mut text = String::from("# traffic cluster: one host:port per process, in process-index order\n");
    for host in hosts {
        text.push_str(host);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_comments() {
        let hosts = parse_hostfile("# cluster\n127.0.0.1:2101\n\n127.0.0.2:2102 # second\n").unwrap();
        assert_eq!(hosts, vec!["127.0.0.1:2101", "127.0.0.2:2102"]);
        assert_eq!(parse_hostfile(&format_hostfile(&hosts)).unwrap(), hosts);
        assert!(parse_hostfile("localhost").is_err());
        assert!(parse_hostfile("").is_err());
    }
}
