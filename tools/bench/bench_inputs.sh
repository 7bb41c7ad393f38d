# Part of tools/bench/bench (sourced): the workloads' inputs, generated once
# by the gen_*.py scripts beside this file and cached in $CACHE under names
# that carry DATA_VERSION. The generators are seeded, so an input has the same
# bytes wherever it is made.
# shellcheck shell=bash

gen_tree_tar() {
    python3 "$BENCH_DIR/gen_tree_tar.py" "$1" "$TREE_FILES" "$TREE_TOP_DIRS" "$TREE_SUB_DIRS" "$TREE_MAX_SIZE"
}

gen_random_file() {
    python3 "$BENCH_DIR/gen_random_file.py" "$1"
}

gen_sqlite_sql() {
    python3 "$BENCH_DIR/gen_sqlite_sql.py" "$1" "$SQLITE_INSERTS"
}

gen_git_repo() {
    local dest=$1
    git init -q --bare "$dest" || return 1
    python3 "$BENCH_DIR/gen_git_history.py" "$GIT_FILES" "$GIT_COMMITS" |
        git -C "$dest" fast-import --quiet || return 1
    git -C "$dest" symbolic-ref HEAD refs/heads/main
    git -C "$dest" gc -q
}

gen_cproj_tar() {
    local out=$1 tmp
    tmp=$(mktemp -d "$CACHE/cproj.XXXXXX")
    python3 "$BENCH_DIR/gen_cproj.py" "$tmp/cproj" "$CPROJ_FILES" || return 1
    tar -C "$tmp" --sort=name --mtime=@1767225600 --owner=0 --group=0 --numeric-owner \
        -cf "$out" cproj || return 1
    rm -rf "$tmp"
}

# make_cached NAME GENERATOR: create $CACHE/NAME with GENERATOR PATH unless present.
make_cached() {
    local gen=$2 path="$CACHE/$1"
    [[ -e "$path" ]] && return 0
    note "generating $path"
    rm -rf "$path.tmp"
    "$gen" "$path.tmp" || { rm -rf "$path.tmp"; die "generating $path failed"; }
    mv "$path.tmp" "$path"
}

# prepare_inputs: sets TREE_TAR, RAND_FILE, SQL_FILE, GIT_SRC and CPROJ_TAR,
# and generates those the selected workloads read.
prepare_inputs() {
    mkdir -p "$CACHE"
    TREE_TAR="$CACHE/tree-v$DATA_VERSION.tar"
    RAND_FILE="$CACHE/random-1g-v$DATA_VERSION.bin"
    SQL_FILE="$CACHE/sqlite-v$DATA_VERSION.sql"
    GIT_SRC="$CACHE/git-src-v$DATA_VERSION.git"
    CPROJ_TAR="$CACHE/cproj-v$DATA_VERSION.tar"
    local g
    for g in "${GROUPS_SEL[@]}"; do
        case $g in
        tree) make_cached "$(basename "$TREE_TAR")" gen_tree_tar ;;
        seqio | randio) make_cached "$(basename "$RAND_FILE")" gen_random_file ;;
        sqlite) make_cached "$(basename "$SQL_FILE")" gen_sqlite_sql ;;
        git) make_cached "$(basename "$GIT_SRC")" gen_git_repo ;;
        cbuild) make_cached "$(basename "$CPROJ_TAR")" gen_cproj_tar ;;
        esac
    done
}
