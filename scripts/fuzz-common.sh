# Shared by scripts/fuzz-smoke and scripts/fuzz-long; source it from the
# repository root. It only defines names and functions.

# Every target in fuzz/Cargo.toml, in the order the scripts run them.
FUZZ_TARGETS=(mime_parse unpack qr_decode links smtp_session smtp_data milter config policy engine)

# Prints the libFuzzer dictionary of a target, if it has one.
fuzz_dict() {
    case "$1" in
        mime_parse|engine) echo fuzz/dicts/mime.dict ;;
        smtp_session|smtp_data) echo fuzz/dicts/smtp.dict ;;
        milter) echo fuzz/dicts/milter.dict ;;
        links) echo fuzz/dicts/links.dict ;;
        config|policy) echo fuzz/dicts/toml.dict ;;
    esac
}

# Exits with an error naming the missing tool when nightly or cargo-fuzz is absent.
require_cargo_fuzz() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "error: no nightly toolchain; install it with 'rustup toolchain install nightly --profile minimal'" >&2
        exit 1
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        echo "error: cargo-fuzz is not installed; install it with 'cargo install cargo-fuzz'" >&2
        exit 1
    fi
}

# Every build and run uses the release profile of fuzz/Cargo.toml (-O), which
# keeps debug assertions and overflow checks in Gatehouse's crates and turns
# them off in dependencies. Without -O, cargo-fuzz enables debug assertions
# everywhere, and mail-parser 0.11.9 has a debug_assert!(false) on input it
# handles well in release builds (fuzz/regressions/mime_parse/ has one).
FUZZ_BUILD_FLAGS=(-O)

# Options every fuzzing run passes to libFuzzer:
#   -timeout=30          an input that runs longer than 30 s is a hang and fails the run
#   -rss_limit_mb=2048   a process over 2 GiB resident fails the run
#   -print_final_stats=1 prints executions and peak RSS at the end
FUZZ_OPTIONS=(-timeout=30 -rss_limit_mb=2048 -print_final_stats=1)

# Logs go to fuzz/logs/<target>/, apart from fuzz/artifacts/<target>/, where
# libFuzzer writes only the inputs that failed. cargo-fuzz names every new
# file in the artifacts folder as a failing input.
fuzz_log() {
    echo "fuzz/logs/$1/$2.log"
}

# Runs every input in fuzz/regressions/<target>/ once; returns non-zero when
# one crashes, hangs or fails an assertion. A target without regression
# inputs passes.
replay_regressions() {
    local target="$1" folder="fuzz/regressions/$1" log
    [ -d "$folder" ] || return 0
    local -a inputs=()
    while IFS= read -r -d '' file; do inputs+=("$file"); done \
        < <(find "$folder" -type f -print0 | sort -z)
    [ ${#inputs[@]} -gt 0 ] || return 0
    log=$(fuzz_log "$target" regressions)
    mkdir -p "fuzz/logs/$target"
    if cargo +nightly fuzz run "${FUZZ_BUILD_FLAGS[@]}" "$target" "${inputs[@]}" -- "${FUZZ_OPTIONS[@]}" \
        >"$log" 2>&1; then
        printf '%-13s %3d regression inputs ok\n' "$target" "${#inputs[@]}"
    else
        printf '%-13s regression inputs FAIL, see %s\n' "$target" "$log"
        print_failure "$target" "$log"
        return 1
    fi
}

# Fuzzes one target for the given number of seconds from fuzz/corpus/<target>/,
# writing libFuzzer's output to fuzz/logs/<target>/fuzz.log. Extra arguments
# go to libFuzzer.
fuzz_target() {
    local target="$1" seconds="$2"
    shift 2
    local -a options=("${FUZZ_OPTIONS[@]}" "-max_total_time=$seconds" "$@")
    local dict
    dict=$(fuzz_dict "$target")
    [ -z "$dict" ] || options+=("-dict=$dict")
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" "fuzz/logs/$target"
    cargo +nightly fuzz run "${FUZZ_BUILD_FLAGS[@]}" "$target" "fuzz/corpus/$target" -- "${options[@]}" \
        >"$(fuzz_log "$target" fuzz)" 2>&1
}

# Prints why a run failed, to standard error: the panic message or
# sanitizer report from the log, or its last lines when it has neither, as
# after a build error. Then prints each input libFuzzer saved, in hex, so
# that a CI log is enough to reproduce the failure.
print_failure() {
    local target="$1" log="$2" input report
    report=$(grep -E -A4 "panicked at|^==[0-9]+== ?ERROR|^SUMMARY|^ERROR: libFuzzer" "$log" | head -n 40 || true)
    {
        echo "--- $log: the failure"
        if [ -n "$report" ]; then
            echo "$report"
        else
            tail -n 30 "$log"
        fi
        for input in "fuzz/artifacts/$target"/*; do
            [ -f "$input" ] || continue
            echo "--- $input ($(wc -c < "$input") bytes; the first 1,024 in hex)"
            head -c 1024 "$input" | od -A d -t x1 -v
        done
    } >&2
}

# Prints the last status line of a target's fuzz.log: executions, coverage
# (cov), features (ft), corpus size, executions per second and RSS.
summary_line() {
    grep -E '^#[0-9]+' "$(fuzz_log "$1" fuzz)" | tail -n 1 | tr -s ' \t' ' ' || true
}
