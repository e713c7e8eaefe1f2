#!/usr/bin/env bash
# Builds and checks the project's container image (docker/Dockerfile) with docker or podman.
#   scripts/image.sh build [cpu|cuda]   make image [VARIANT=cuda]
#   scripts/image.sh smoke              make image-smoke: `make smoke` inside the CPU image, runs/ mounted
#                                       (SAME_AS=runs/smoke: its numbers must equal that run's, made outside)
#   scripts/image.sh team               make image-team: two users of the image's group, side by side, on one
#                                       group-shared runs folder and cache (docs/shared-machines.md)
# The engine: docker when its daemon answers, else podman (installed through apt with runc and debootstrap
# when absent and apt is there). Settings (environment): IMAGE (the name; default pmc-unlearning:VARIANT),
# BASE (the base image; the CPU variant's default is a Debian bookworm made with debootstrap from this
# machine's apt mirror when podman cannot find one locally), TORCH_INDEX_URL, and pip's own settings (cert,
# index-url, extra-index-url, find-links) read from `pip config` and the environment: their local files and
# folders are mounted read-only into the build (podman). Index URLs (pip's two and TORCH_INDEX_URL) may carry a
# user and password: they reach the build as build secrets (files under /run/secrets/ for the one step that
# installs, in no layer and not in `history`); cert and find-links, local paths, as build arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
COMMAND=${1:-build}
VARIANT=${2:-${VARIANT:-cpu}}
case "$VARIANT" in cpu|cuda) ;; *) echo "VARIANT must be cpu or cuda, got '$VARIANT'" >&2; exit 2;; esac
IMAGE=${IMAGE:-pmc-unlearning:$VARIANT}
DEBIAN_BASE=localhost/debian:bookworm
SMOKE_NAME=image-smoke
# The image's group (docker/Dockerfile): its writable folders are the group's, mode 2770.
IMAGE_GID=1000
# The secrets' files, readable by this user alone, removed on exit.
SECRETS=$(mktemp -d)
chmod 700 "$SECRETS"
trap 'rm -rf "$SECRETS"' EXIT

say() { echo "[image] $*"; }

choose_engine() {
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
        ENGINE_FLAGS=()
        return
    fi
    if ! command -v podman >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || { echo "neither a docker daemon nor podman here; install one of them" >&2; exit 1; }
        say "installing podman, runc and debootstrap through apt"
        $(sudo_if_needed) apt-get update -qq
        $(sudo_if_needed) apt-get install -y -qq podman runc debootstrap >/dev/null
    fi
    ENGINE=podman
    # runc, not crun: crun fails on cgroup hybrid mode; the default rlimits ask for more than a sandbox gives.
    ENGINE_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
    if command -v runc >/dev/null 2>&1; then ENGINE_FLAGS+=(--runtime runc); fi
}

sudo_if_needed() { [ "$(id -u)" = 0 ] || echo sudo; }

# A Debian bookworm base from Debian's packages, for machines that cannot pull one from a registry.
debian_base() {
    if podman image exists "$DEBIAN_BASE"; then return; fi
    command -v debootstrap >/dev/null 2>&1 || $(sudo_if_needed) apt-get install -y -qq debootstrap >/dev/null
    local mirror rootfs
    mirror=$(grep -h -m1 -o 'https\?://[^ ]*debian/\?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d)
    say "making $DEBIAN_BASE with debootstrap from $mirror"
    $(sudo_if_needed) debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    $(sudo_if_needed) tar -C "$rootfs" -c . | podman import - "$DEBIAN_BASE" >/dev/null
    $(sudo_if_needed) rm -rf "$rootfs"
}

# pip's setting KEY (cert, index-url, extra-index-url, find-links): the environment's PIP_* first, then pip's
# configuration files.
pip_setting() {
    local env_name="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
    if [ -n "${!env_name:-}" ]; then echo "${!env_name}"; return; fi
    python3 -m pip config list 2>/dev/null | sed -n "s/^[a-z:]*\.$1='\(.*\)'$/\1/p" | tail -1
}

# Adds to BUILD_ARGS the build secret NAME holding VALUE (a file of its own, so that it is in no command line
# either); the Dockerfile reads it from /run/secrets/NAME.
pass_secret() {
    local name=$1 value=$2
    (umask 077 && printf '%s' "$value" > "$SECRETS/$name")
    BUILD_ARGS+=(--secret "id=$name,src=$SECRETS/$name")
}

# Adds to BUILD_ARGS pip's setting KEY: a build secret for the index URLs, a build argument for the rest; each
# local path in it is mounted read-only (podman) under /run/host-pip/ and named there.
pass_pip_setting() {
    local key=$1 value item mounted=() n=0
    value=$(pip_setting "$key")
    [ -n "$value" ] || return 0
    for item in $value; do
        local path=${item#file://}
        if [ -e "$path" ] && [ "$ENGINE" = podman ]; then
            local inside="/run/host-pip/$key-$n"
            n=$((n + 1))
            if [ "$path" != "$item" ]; then
                # A file:// index: its pages may link to files beside it (../../files/...), so mount its parent.
                BUILD_ARGS+=(--volume "$(dirname "$path"):$inside:ro")
                mounted+=("file://$inside/$(basename "$path")")
            else
                BUILD_ARGS+=(--volume "$path:$inside:ro")
                mounted+=("$inside")
            fi
        elif [ -e "$path" ]; then
            say "pip's $key $item is a local path: docker builds cannot mount it, left out"
        else
            mounted+=("$item")
        fi
    done
    [ ${#mounted[@]} -gt 0 ] || return 0
    case "$key" in
        index-url|extra-index-url) pass_secret "pip_$(echo "$key" | tr '-' '_')" "${mounted[*]}" ;;
        *) BUILD_ARGS+=(--build-arg "PIP_$(echo "$key" | tr 'a-z-' 'A-Z_')=${mounted[*]}") ;;
    esac
}

build() {
    choose_engine
    BUILD_ARGS=(--build-arg "VLLM_VARIANT=$VARIANT")
    # Set but empty is a choice too (no torch index): the secret's file is then empty.
    if [ -n "${TORCH_INDEX_URL+set}" ]; then pass_secret torch_index_url "$TORCH_INDEX_URL"; fi
    local base=${BASE:-}
    if [ -z "$base" ]; then  # both variants: the CUDA wheels carry their runtime (docker/Dockerfile)
        if [ "$ENGINE" = podman ]; then debian_base; base=$DEBIAN_BASE; else base=debian:bookworm-slim; fi
    fi
    if [ -n "$base" ]; then BUILD_ARGS+=(--build-arg "BASE=$base"); fi
    for key in cert index-url extra-index-url find-links; do pass_pip_setting "$key"; done
    if [ "$ENGINE" = podman ]; then BUILD_ARGS+=(--network host); fi
    say "building $IMAGE with $ENGINE (base: ${base:-the default in docker/Dockerfile})"
    local start=$SECONDS
    $ENGINE build "${ENGINE_FLAGS[@]}" "${BUILD_ARGS[@]}" -f docker/Dockerfile -t "$IMAGE" .
    say "built $IMAGE in $((SECONDS - start)) s, $($ENGINE image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1 / 1e9}')"
    check_imports
}

# Inside the image, without a GPU: torch's build (its CUDA version in the CUDA variant), and that vLLM, Ray and
# the project's job recipe import.
check_imports() {
    $ENGINE run --rm "${ENGINE_FLAGS[@]}" --network none "$IMAGE" python -c "
import torch, vllm, ray
import pmc_unlearning.orchestrator.pipeline
cuda = torch.version.cuda
assert ('$VARIANT' == 'cuda') == (cuda is not None), f'torch {torch.__version__} in the $VARIANT image'
print(f'[image] inside: torch {torch.__version__} (CUDA {cuda or \"none\"}), vllm {vllm.__version__}, ray {ray.__version__}, pmc_unlearning imports')
" 2>&1 | grep -v -i "warning\|triton" || { echo "the import check inside $IMAGE failed" >&2; exit 1; }
}

# The CPU image built from this tree (the engine's layer cache makes an unchanged tree cheap), then `make smoke`
# inside it as the host's user (files in runs/ stay the host user's) with the image's group added (its cache
# and home folders are the group's), runs/ mounted, no network; then the run folder it leaves is checked from
# the host.
smoke() {
    build
    local default_user
    default_user=$($ENGINE run --rm "${ENGINE_FLAGS[@]}" --network none "$IMAGE" id -u)
    [ "$default_user" != 0 ] || { echo "the image runs as root by default" >&2; exit 1; }
    mkdir -p runs
    rm -rf "runs/$SMOKE_NAME" "runs/$SMOKE_NAME.partial" "runs/$SMOKE_NAME.previous"
    say "make smoke inside $IMAGE (user $default_user by default; run as $(id -u) for the mounted runs/)"
    local start=$SECONDS
    $ENGINE run --rm "${ENGINE_FLAGS[@]}" --network none --shm-size 2g --user "$(id -u):$(id -g)" \
        --group-add "$IMAGE_GID" -v "$PWD/runs:/app/runs" "$IMAGE" make smoke NAME="$SMOKE_NAME"
    say "smoke inside the image: $((SECONDS - start)) s"
    python3 scripts/check_run_folder.py "runs/$SMOKE_NAME" ${SAME_AS:+--same-as "$SAME_AS"}
}

# Two users of the image's group (uids 2001 and 2002, no name in the image) run `make smoke` side by side on one
# group-shared runs folder and one group-shared cache (host folders, setgid 2770, the image's gid), as a team on
# a shared volume does. Then user 2002 reads 2001's results, tries to change them and to run a job of 2001's
# name: each must fail as docs/shared-machines.md says, and nothing in either folder may be writable by others.
team() {
    build
    local shared
    shared=$(mktemp -d "${TMPDIR:-/tmp}/pmc-team-XXXXXX")
    TEAM_FOLDER=$shared  # the exit trap runs after this function's locals are gone
    trap 'rm -rf "$SECRETS" "$TEAM_FOLDER"' EXIT
    chmod 755 "$shared"
    mkdir "$shared/runs" "$shared/cache"
    chgrp "$IMAGE_GID" "$shared/runs" "$shared/cache"
    chmod 2770 "$shared/runs" "$shared/cache"
    local as_user=(run --rm "${ENGINE_FLAGS[@]}" --network none --shm-size 2g -v "$shared/runs:/app/runs"
                   -v "$shared/cache:/app/.cache")
    say "make smoke as users 2001 and 2002 of group $IMAGE_GID at the same time, on $shared"
    local start=$SECONDS pids=() uid
    for uid in 2001 2002; do
        $ENGINE "${as_user[@]}" --user "$uid:$IMAGE_GID" "$IMAGE" make smoke NAME="smoke-$uid" >"$shared/$uid.log" 2>&1 &
        pids+=($!)
    done
    local failed=0
    for uid in 2001 2002; do
        if ! wait "${pids[0]}"; then failed=1; say "user $uid's job failed:"; tail -20 "$shared/$uid.log" >&2; fi
        pids=("${pids[@]:1}")
    done
    [ "$failed" = 0 ] || exit 1
    say "both jobs finished in $((SECONDS - start)) s (side by side)"
    for uid in 2001 2002; do python3 scripts/check_run_folder.py "$shared/runs/smoke-$uid"; done
    local tries
    tries=$($ENGINE "${as_user[@]}" --user "2002:$IMAGE_GID" "$IMAGE" sh -c '
        head -c 1 /app/runs/smoke-2001/eval.json >/dev/null && echo "reads 2001s eval.json"
        { echo >> /app/runs/smoke-2001/eval.json; } 2>/dev/null && echo "CHANGED 2001s eval.json"
        touch /app/runs/smoke-2001/planted 2>/dev/null && echo "ADDED a file to 2001s run"
        ls /app/.cache/user-2001 >/dev/null 2>&1 && echo "ENTERED 2001s cache"
        out=$(make -s smoke NAME=smoke-2001 2>&1); echo "its job of name smoke-2001: exit $?"
        echo "$out" | grep "^error:"' 2>&1)
    echo "$tries" | sed 's/^/[image]   user 2002: /'
    local expected_refusal="error: runs/smoke-2001 is user id 2001's: a job never moves or deletes another user's folder"
    if [ "$(echo "$tries" | head -1)" != "reads 2001s eval.json" ] || echo "$tries" | grep -q "CHANGED\|ADDED\|ENTERED" \
        || ! echo "$tries" | grep -qF "$expected_refusal" || ! echo "$tries" | grep -q "smoke-2001: exit 2$"; then
        echo "a user of the group could do more, or less, than docs/shared-machines.md says (above)" >&2; exit 1
    fi
    local open
    open=$(find "$shared/runs" "$shared/cache" -mindepth 1 \( -perm -g+w -o -perm /o+rwx \) -print)
    if [ -n "$open" ]; then echo "writable by the group or open to others:" >&2; echo "$open" >&2; exit 1; fi
    say "team check passed: each read the other's results, could change none of them, and took none of their names"
}

case "$COMMAND" in
    build) build ;;
    team) [ "$VARIANT" = cpu ] || { echo "the team check runs in the CPU image" >&2; exit 2; }; team ;;
    smoke) [ "$VARIANT" = cpu ] || { echo "the smoke runs in the CPU image" >&2; exit 2; }; smoke ;;
    *) echo "usage: scripts/image.sh build [cpu|cuda] | smoke | team" >&2; exit 2 ;;
esac
