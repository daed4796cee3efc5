#!/usr/bin/env bash
# Checks that the Containerfiles (operator/, pageserver/, proxy/, compute/) and
# scripts/images/build-images.sh (the debootstrap images the tests use) describe the same images:
#   - per image: the same ENTRYPOINT and USER (uid 10001 for operator, pageserver and proxy;
#     root for compute, which mounts FUSE in a privileged pod);
#   - every binary a Containerfile ships is one build-images.sh ships (BINARIES), is built and
#     stripped in the build stage, and the ENTRYPOINT binary is among them; every binary of
#     BINARIES is shipped by some Containerfile;
#   - the compute image ships the binaries the operator's compute pods run (/usr/local/bin/...
#     in operator/k8s/pod_compute_runtime.cc), and next to the agent the library it preloads into
#     the postmaster (the lib*.so name in compute/gated_child.cc);
#   - a shipped shared library libX.so is built by the target X (CMake's naming);
#   - both install scripts/images/runtime-packages.txt, create user pgbranch (10001, group
#     postgres) and set the same PATH.
#
#   check_containerfiles.sh ROOT      prints one line per problem; exit 1 if any, else 0
set -euo pipefail
ROOT=${1:?usage: check_containerfiles.sh ROOT}
BI=$ROOT/scripts/images/build-images.sh
problems=0
problem() { echo "MISMATCH: $*"; problems=$((problems + 1)); }
nospace() { tr -d ' \t'; }
# The CMake target that builds a shipped file: libX.so is built by target X.
target_of() { if [[ $1 =~ ^lib(.*)\.so$ ]]; then echo "${BASH_REMATCH[1]}"; else echo "$1"; fi; }

[[ -f $BI ]] || { echo "missing $BI"; exit 1; }
read -r -a binaries <<<"$(sed -n 's/^BINARIES=(\(.*\))$/\1/p' "$BI")"
((${#binaries[@]})) || { echo "no BINARIES=(...) line in $BI"; exit 1; }
bi_path=$(sed -n 's/.*"PATH=\([^"]*\)".*/\1/p' "$BI" | head -n1)

declare -A shipped_anywhere=()
images=(operator pageserver proxy compute)
for name in "${images[@]}"; do
  cf=$ROOT/$name/Containerfile
  [[ -f $cf ]] || { problem "$name: $cf is missing"; continue; }
  line=$(grep -E "^make_image \"docker.io/pgbranch/$name:" "$BI" || true)
  [[ -n $line ]] || { problem "$name: build-images.sh makes no image docker.io/pgbranch/$name"; continue; }
  bi_entry=$(sed -E "s/^make_image \"[^\"]*\" '([^']*)' .*/\1/" <<<"$line" | nospace)
  bi_user=$(sed -E "s/^make_image \"[^\"]*\" '[^']*' \"([^\"]*)\".*/\1/" <<<"$line")

  cf_entry=$(grep -E '^ENTRYPOINT ' "$cf" | tail -n1 | sed 's/^ENTRYPOINT //' | nospace)
  cf_user=$(grep -E '^USER ' "$cf" | tail -n1 | sed 's/^USER //' | nospace)
  [[ $cf_entry == "$bi_entry" ]] ||
    problem "$name: ENTRYPOINT $cf_entry in the Containerfile, $bi_entry in build-images.sh"
  [[ $cf_user == "$bi_user" ]] ||
    problem "$name: USER '$cf_user' in the Containerfile, '$bi_user' in build-images.sh"
  if [[ $name == compute ]]; then want_user=0; else want_user=10001:10001; fi
  [[ $cf_user == "$want_user" ]] || problem "$name: USER '$cf_user', want '$want_user'"

  # binaries: COPY --from=build /src/build/bin/A /src/build/bin/B /usr/local/bin/
  read -r -a copied <<<"$(grep -E '^COPY --from=build ' "$cf" | grep -o '/src/build/bin/[A-Za-z0-9_.-]*' |
    sed 's#.*/##' | tr '\n' ' ')"
  read -r -a built <<<"$(grep -o -- '--target [A-Za-z0-9_. -]*' "$cf" | sed 's/^--target //' | tr '\n' ' ')"
  read -r -a stripped <<<"$(grep -E '^ *&& strip ' "$cf" | grep -o 'build/bin/[A-Za-z0-9_.-]*' | sed 's#.*/##' | tr '\n' ' ')"
  ((${#copied[@]})) || problem "$name: the Containerfile copies no binary from the build stage"
  copied_targets=()
  for b in "${copied[@]}"; do
    shipped_anywhere[$b]=1
    target=$(target_of "$b")
    copied_targets+=("$target")
    [[ " ${binaries[*]} " == *" $b "* ]] ||
      problem "$name: ships $b, which build-images.sh does not (BINARIES)"
    [[ " ${built[*]} " == *" $target "* ]] || problem "$name: copies $b but does not build it (--target $target)"
    [[ " ${stripped[*]} " == *" $b "* ]] || problem "$name: copies $b but does not strip it"
  done
  for b in "${built[@]}"; do
    [[ " ${copied_targets[*]} " == *" $b "* ]] || problem "$name: builds $b but does not ship it"
  done
  entry_bin=$(grep -o '"/usr/local/bin/[^"]*"' <<<"$cf_entry" | head -n1 | tr -d '"' | sed 's#.*/##')
  [[ -n $entry_bin && " ${copied[*]} " == *" $entry_bin "* ]] ||
    problem "$name: the ENTRYPOINT binary '$entry_bin' is not among the shipped binaries (${copied[*]})"

  grep -q 'COPY scripts/images/runtime-packages.txt' "$cf" ||
    problem "$name: does not install scripts/images/runtime-packages.txt"
  grep -qE 'useradd -u 10001 -g 10001 -G postgres .* pgbranch' "$cf" ||
    problem "$name: does not create user pgbranch (uid 10001, group postgres)"
  cf_path=$(grep -o 'PATH=[^ ]*' "$cf" | head -n1 | sed 's/^PATH=//')
  [[ $cf_path == "$bi_path" ]] || problem "$name: PATH '$cf_path', build-images.sh '$bi_path'"
  if [[ $name == compute ]]; then
    runtime=$ROOT/operator/k8s/pod_compute_runtime.cc
    for b in $(grep -o '/usr/local/bin/[A-Za-z0-9_.-]*' "$runtime" 2>/dev/null | sed 's#.*/##' | sort -u); do
      [[ " ${copied[*]} " == *" $b "* ]] ||
        problem "compute: compute pods run /usr/local/bin/$b (pod_compute_runtime.cc) but the image lacks it"
    done
    # The agent preloads this library from the directory of its own executable (gated_child.cc):
    # without it a compute starts, but spawns its postmaster only after the mount.
    gate=$(grep -o '"lib[A-Za-z0-9_]*\.so"' "$ROOT/compute/gated_child.cc" 2>/dev/null | head -n1 | tr -d '"')
    if [[ -z $gate ]]; then
      problem "compute: no lib*.so name in compute/gated_child.cc"
    elif [[ " ${copied[*]} " != *" $gate "* ]]; then
      problem "compute: the agent preloads $gate from its own directory (gated_child.cc) but the image lacks it in /usr/local/bin"
    fi
  fi
done
for b in "${binaries[@]}"; do
  [[ -n ${shipped_anywhere[$b]:-} ]] ||
    problem "build-images.sh ships $b, which no Containerfile image ships"
done
grep -qE 'useradd -u 10001 -g 10001 -G postgres .* pgbranch' "$BI" ||
  problem "build-images.sh does not create user pgbranch (uid 10001, group postgres)"
grep -q 'runtime-packages.txt' "$BI" || problem "build-images.sh does not use runtime-packages.txt"
((problems == 0)) || exit 1
echo "ok: ${images[*]} agree with build-images.sh (binaries ${binaries[*]})"
