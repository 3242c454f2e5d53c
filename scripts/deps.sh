#!/usr/bin/env bash
# Install what vsearch needs on Debian 12 and build FAISS 1.7.3 from Debian's
# source package into a cache prefix outside the checkout (DESIGN.md section 2).
#
# Idempotent: packages already present are not reinstalled, and a FAISS build
# whose stamp matches is reused.  Prints the FAISS prefix on its last line.
#
#   VSEARCH_CACHE   cache root (default /var/cache/vsearch)
#   VSEARCH_JOBS    parallel build jobs (default: nproc)
set -euo pipefail

cache=${VSEARCH_CACHE:-/var/cache/vsearch}
jobs=${VSEARCH_JOBS:-$(nproc)}
faiss_version=1.7.3

pkgs=(build-essential cmake pkg-config dpkg-dev patch
      liblmdb-dev lmdb-utils libuv1-dev libmsgpack-dev libopenblas-dev
      libstemmer-dev libutf8proc-dev libroaring-dev libcmocka-dev libjansson-dev
      zlib1g-dev python3-msgpack dataset-fashion-mnist libhnswlib-dev libxapian-dev
      libarchive-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages ${missing[*]}; run as root (or: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The CPU decides the FAISS flavour: AVX2 where the CPU has it, generic otherwise.
if grep -qw avx2 /proc/cpuinfo; then opt=avx2; lib=faiss_avx2; else opt=generic; lib=faiss; fi
prefix="$cache/faiss-$faiss_version-$opt"
stamp="$prefix/.vsearch-stamp"
# The stamp names every patch of ours, so changing one rebuilds FAISS.
patches=(faiss-hnsw-search-params.patch)
here=$(cd "$(dirname "$0")" && pwd)
want="faiss $faiss_version $opt c_api ${patches[*]}"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$prefix"
  exit 0
fi

echo "deps: building FAISS $faiss_version ($opt) into $prefix (a few minutes, once)" >&2
mkdir -p "$cache"
chmod 755 "$cache"
work=$(mktemp -d "$cache/faiss-build.XXXXXX")
chmod 755 "$work"  # apt downloads as _apt
trap 'rm -rf "$work"' EXIT

# Fetch Debian's source package without touching the system's apt configuration:
# a private deb-src list and a private lists directory.
mkdir -p "$work/apt/sources" "$work/apt/lists/partial"
cat > "$work/apt/sources/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
aptopts=(-o Dir::Etc::SourceParts="$work/apt/sources" -o Dir::Etc::SourceList="$work/apt/none"
         -o Dir::State::Lists="$work/apt/lists")
apt-get "${aptopts[@]}" update -qq >&2
(cd "$work" && apt-get "${aptopts[@]}" source -qq --download-only faiss >&2)
ls "$work"/faiss_"$faiss_version"-*.dsc >/dev/null  # only bookworm's 1.7.3 is expected
(cd "$work" && dpkg-source --no-check -x faiss_*.dsc src >&2)
for p in "${patches[@]}"; do
  patch -d "$work/src" -p1 --forward --quiet < "$here/$p" >&2
done

src="$work/src"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_OPT_LEVEL=$opt -DFAISS_ENABLE_C_API=ON -DFAISS_ENABLE_PYTHON=OFF \
  -DFAISS_ENABLE_GPU=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
  -DBLA_VENDOR=OpenBLAS -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_INSTALL_PREFIX="$prefix" >&2
cmake --build "$work/build" -j "$jobs" --target "$lib" faiss_c >&2

# Install by hand: the C API target's install rules are incomplete in 1.7.3.
rm -rf "$prefix.tmp"
mkdir -p "$prefix.tmp/lib" "$prefix.tmp/include/faiss/c_api"
cp "$work/build/faiss/lib$lib.a" "$prefix.tmp/lib/"
cp "$work/build/c_api/libfaiss_c.a" "$prefix.tmp/lib/"
(cd "$src" && find faiss -name '*.h' -not -path 'faiss/c_api/*' -not -path 'faiss/gpu/*' \
   -exec cp --parents {} "$prefix.tmp/include/" \;)
(cd "$src/c_api" && find . -name '*.h' -not -path './gpu/*' \
   -exec cp --parents {} "$prefix.tmp/include/faiss/c_api/" \;)
echo "$lib" > "$prefix.tmp/lib/flavour"
echo "$want" > "$prefix.tmp/.vsearch-stamp"
rm -rf "$prefix"
mv "$prefix.tmp" "$prefix"
echo "$prefix"
