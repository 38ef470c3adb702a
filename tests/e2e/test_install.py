"""Installing what was built: `cmake --install` into a prefix (stripped binary, debug info apart, man
page and bash completion generated from the CLI, docs) and the .deb from `cpack`, each then used for a
backup and a restore."""
import os
import shutil
import subprocess
from pathlib import Path

import peers

BUILD = peers.ROOT / "build"


def run_installed(binary: Path, tmp_path: Path):
    env = dict(os.environ, LIFEBOAT_REPOSITORY=str(tmp_path / "repo"), LIFEBOAT_PASSWORD="pw")
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "a.txt").write_text("installed lifeboat")
    run = lambda *a: subprocess.run([str(binary), *map(str, a)], env=env, capture_output=True, text=True, check=True)
    assert run("--version").stdout.strip() == "0.1.0"
    run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1")
    run("backup", src)
    out = tmp_path / "out"
    run("restore", "latest", "--target", out, "--verify")
    assert (out / str(src).lstrip("/") / "a.txt").read_text() == "installed lifeboat"


def test_cmake_install_into_a_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True, capture_output=True)
    binary = prefix / "bin" / "lifeboat"
    sections = subprocess.run(["readelf", "-S", binary], capture_output=True, text=True, check=True).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections, "the installed binary is stripped"
    run_installed(binary, tmp_path / "use")

    man = (prefix / "share" / "man" / "man1" / "lifeboat.1").read_text()
    assert man.startswith(".TH LIFEBOAT 1")
    for command in ("restore firestore", "backup gcs", "drill", "mongodb follow"):
        assert f".SS {command}" in man, command
    assert "\\-\\-read\\-data" in man and "EXIT STATUS" in man
    for doc in ("cli.md", "plan.md", "format.md", "README.md", "lifeboat.yaml"):
        assert (prefix / "share" / "doc" / "lifeboat" / doc).is_file(), doc

    completion = prefix / "share" / "bash-completion" / "completions" / "lifeboat"

    def complete(*words):
        script = (f"source {completion}; COMP_WORDS=(lifeboat {' '.join(words)}); COMP_CWORD={len(words)}; "
                  "_lifeboat; printf '%s\\n' \"${COMPREPLY[@]}\"")
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split()

    assert "backup" in complete("ba")
    assert complete("restore", "fi") == ["firestore"]
    assert "--read-data" in complete("check", "--read")
    assert "--to-project" in complete("--json", "restore", "firestore", "--to-p")


def test_debian_package_declares_its_libraries_and_works_unpacked(tmp_path):
    out = tmp_path / "deb"
    subprocess.run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD, check=True, capture_output=True)
    deb = next(out.glob("lifeboat_*.deb"))
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True, check=True).stdout
    for lib in ("libmongoc-1.0-0", "libgit2", "libcurl4", "libzstd1", "libargon2-1", "libyaml-cpp", "libssl3"):
        assert lib in depends, (lib, depends)
    contents = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/bin/lifeboat", "./usr/share/man/man1/lifeboat.1", "./usr/share/bash-completion/completions/lifeboat"):
        assert path in contents, path
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    run_installed(root / "usr" / "bin" / "lifeboat", tmp_path / "use")
    shutil.rmtree(out / "_CPack_Packages", ignore_errors=True)


def test_libmongoc_is_loaded_only_by_commands_that_talk_to_mongodb(tmp_path):
    # Loaded with the program it initialised OpenSSL, SASL and its plug-ins and ICU before main:
    # ~3 MiB of resident memory and ~5 ms for every command (docs/cli.md, `backup mongodb`).
    env = dict(os.environ, LD_DEBUG="libs", LIFEBOAT_REPOSITORY=str(tmp_path / "repo"), LIFEBOAT_PASSWORD="pw")
    binary = BUILD / "lifeboat"
    plain = subprocess.run([binary, "--version"], env=env, capture_output=True, text=True)
    assert plain.returncode == 0 and "libmongoc" not in plain.stderr
    subprocess.run([binary, "init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"], env=env, check=True,
                   capture_output=True)
    mongo = subprocess.run([binary, "backup", "mongodb", "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"],
                           env=env, capture_output=True, text=True)
    assert "libmongoc-1.0.so.0" in mongo.stderr
    assert mongo.returncode != 0 and "MongoDB server unreachable" in mongo.stderr, mongo.stderr[-500:]
