/// mimalloc instead of glibc's malloc: the server and the importer allocate small
/// JSON and SQL values on several threads at once, where glibc's arenas showed as
/// ~30 % of an import's CPU (benches/README.md, "Figures of 2026-12-06, evening").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    carnet::cli::main()
}
