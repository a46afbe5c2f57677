//! Several checkouts (git worktrees) may share one target directory. Cargo identifies a workspace
//! member by its path relative to the workspace root, so two checkouts would reuse each other's
//! compiled migrations; a change of the directory cargo runs in marks them dirty instead.

fn main() {
    println!("cargo:rerun-if-env-changed=PWD");
}
