# bench/summary.awk - turns bench/run.sh's raw results into the markdown
# summary and the data files of the charts.
#
#   awk -v ALLOCS="glibc jemalloc ..." -v REF=mempool -v NORM=glibc -v OUT=dir \
#       -f bench/summary.awk cases.tsv results.csv > tables.md
#
# cases.tsv: index, workload, params, label, metrics (space separated; the
#            first is the case's headline metric), group (scaling:<range>:<threads>
#            for the tb thread sweep, else -), all tab separated.
# results.csv: workload,params,allocator,run,metric,value,maxrss_kb (value and
#            maxrss_kb are NA for a failed run).
#
# Writes OUT/time.dat, OUT/rss.dat, OUT/scaling_<k>.dat and
# OUT/scaling_ranges.txt for the charts.

function higher_better(m) { return m ~ /(^mops$|ops_s$|per_s$|_mops$)/ }

function sort_n(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--)
            a[j + 1] = a[j]
        a[j + 1] = t
    }
}

# Median, min and max of the values stored under key k in V/nv.
function stats(k,    i, a, n) {
    n = nv[k] + 0
    if (n == 0) { S_med = ""; return 0 }
    for (i = 1; i <= n; i++) a[i] = V[k, i] + 0
    sort_n(a, n)
    S_min = a[1]; S_max = a[n]
    S_med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return n
}

function rss_stats(c, al,    i, a, n) {
    n = nr[c, al] + 0
    if (n == 0) { S_med = ""; return 0 }
    for (i = 1; i <= n; i++) a[i] = R[c, al, i] + 0
    sort_n(a, n)
    S_min = a[1]; S_max = a[n]
    S_med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return n
}

function fmt(v) {
    if (v == "") return "-"
    v += 0
    if (v < 0) return sprintf("%.4g", v)
    if (v >= 10000) return sprintf("%.0f", v)
    if (v >= 100) return sprintf("%.1f", v)
    if (v >= 10) return sprintf("%.2f", v)
    if (v >= 1) return sprintf("%.3f", v)
    return sprintf("%.3g", v)
}

function cell(k, nfails,    n, s) {
    n = stats(k)
    if (n == 0) return nfails > 0 ? "FAIL" : "-"
    s = fmt(S_med)
    if (n > 1) s = s " (" fmt(S_min) "-" fmt(S_max) ")"
    if (nfails > 0) s = s " " nfails "x FAIL"
    return s
}

# Cost of X relative to the reference: < 1 means REF is cheaper (better).
function cost_ratio(m, refv, xv) {
    if (refv == "" || xv == "" || refv + 0 <= 0 || xv + 0 <= 0) return ""
    return higher_better(m) ? (xv + 0) / (refv + 0) : (refv + 0) / (xv + 0)
}

BEGIN {
    FS = "\t"
    na = split(ALLOCS, A, " ")
    have_ref = 0
    for (i = 1; i <= na; i++) if (A[i] == REF) have_ref = 1
    norm = NORM
    have_norm = 0
    for (i = 1; i <= na; i++) if (A[i] == norm) have_norm = 1
    if (!have_norm) norm = A[1]
}

FNR == NR {
    nc++
    C_wl[nc] = $2; C_par[nc] = $3; C_lab[nc] = $4; C_grp[nc] = $6
    C_nm[nc] = split($5, tmp, " ")
    for (i = 1; i <= C_nm[nc]; i++) C_m[nc, i] = tmp[i]
    case_of[$2 SUBSEP $3] = nc
    next
}

FNR == 1 { next }

{
    n = split($0, f, ",")
    if (n < 7) next
    c = case_of[f[1] SUBSEP f[2]]
    if (c == "") next
    al = f[3]; met = f[5]; val = f[6]; rss = f[7]
    k = c SUBSEP al SUBSEP met
    if (val == "NA" || val == "") nfail[k]++
    else { nv[k]++; V[k, nv[k]] = val }
    if (met == C_m[c, 1] && rss != "NA" && rss != "") {
        nr[c, al]++
        R[c, al, nr[c, al]] = rss / 1024.0
    }
}

END {
    # ---- time / throughput table ---------------------------------------
    hdr = "| workload | params | metric |"
    sep = "|---|---|---|"
    for (i = 1; i <= na; i++) { hdr = hdr " " A[i] " |"; sep = sep "---|" }
    if (have_ref)
        for (i = 1; i <= na; i++) if (A[i] != REF) { hdr = hdr " " REF "/" A[i] " |"; sep = sep "---|" }
    print "## Time and throughput"
    print ""
    print "Each cell: median of the runs (min-max).  Metrics marked (+) are throughputs"
    print "(higher is better), the others are times or latencies (lower is better)."
    if (have_ref)
        print "Ratio columns: cost of " REF " relative to the other allocator (time ratio, or inverse throughput ratio): below 1 means " REF " is faster."
    print ""
    print hdr
    print sep
    for (c = 1; c <= nc; c++) {
        for (j = 1; j <= C_nm[c]; j++) {
            m = C_m[c, j]
            line = "| " (j == 1 ? C_wl[c] : "") " | " (j == 1 ? C_par[c] : "") " | " m (higher_better(m) ? " (+)" : "") (j == 1 && C_nm[c] > 1 ? " *" : "") " |"
            for (i = 1; i <= na; i++) {
                k = c SUBSEP A[i] SUBSEP m
                line = line " " cell(k, nfail[k] + 0) " |"
                stats(k); med[A[i]] = S_med
            }
            if (have_ref)
                for (i = 1; i <= na; i++) if (A[i] != REF) {
                    r = cost_ratio(m, med[REF], med[A[i]])
                    line = line " " (r == "" ? "-" : sprintf("%.2f", r)) " |"
                    if (j == 1 && r != "") { lsum[A[i]] += log(r); lcnt[A[i]]++ }
                }
            print line
        }
    }
    print ""
    print "(*) the headline metric of a case with several; geometric means use headlines only."
    print ""

    # ---- peak RSS table ----------------------------------------------------
    hdr = "| workload | params |"
    sep = "|---|---|"
    for (i = 1; i <= na; i++) { hdr = hdr " " A[i] " |"; sep = sep "---|" }
    if (have_ref)
        for (i = 1; i <= na; i++) if (A[i] != REF) { hdr = hdr " " REF "/" A[i] " |"; sep = sep "---|" }
    print "## Peak RSS (MiB)"
    print ""
    print "Median over the runs of the process's peak resident set (getrusage ru_maxrss)."
    if (have_ref)
        print "Ratio columns: " REF "'s peak RSS over the other's: below 1 means " REF " uses less memory."
    print ""
    print hdr
    print sep
    for (c = 1; c <= nc; c++) {
        line = "| " C_wl[c] " | " C_par[c] " |"
        for (i = 1; i <= na; i++) {
            rss_stats(c, A[i]); rmed[A[i]] = S_med
            line = line " " fmt(S_med) " |"
        }
        if (have_ref)
            for (i = 1; i <= na; i++) if (A[i] != REF) {
                r = ""
                if (rmed[REF] != "" && rmed[A[i]] != "" && rmed[A[i]] > 0)
                    r = rmed[REF] / rmed[A[i]]
                line = line " " (r == "" ? "-" : sprintf("%.2f", r)) " |"
                if (r != "" && r > 0) { rsum[A[i]] += log(r); rcnt[A[i]]++ }
            }
        print line
    }
    print ""

    # ---- geometric means -------------------------------------------------
    if (have_ref) {
        print "## Geometric means (" REF " relative to each allocator)"
        print ""
        hdr = "| | "; sep = "|---|"
        for (i = 1; i <= na; i++) if (A[i] != REF) { hdr = hdr REF "/" A[i] " | "; sep = sep "---|" }
        print hdr
        print sep
        line = "| time (headline metrics; < 1: " REF " faster) |"
        for (i = 1; i <= na; i++) if (A[i] != REF)
            line = line " " (lcnt[A[i]] ? sprintf("%.3f (%d cases)", exp(lsum[A[i]] / lcnt[A[i]]), lcnt[A[i]]) : "-") " |"
        print line
        line = "| peak RSS (< 1: " REF " smaller) |"
        for (i = 1; i <= na; i++) if (A[i] != REF)
            line = line " " (rcnt[A[i]] ? sprintf("%.3f (%d cases)", exp(rsum[A[i]] / rcnt[A[i]]), rcnt[A[i]]) : "-") " |"
        print line
        print ""
    }

    # ---- chart data ---------------------------------------------------------
    tf = OUT "/time.dat"; rf = OUT "/rss.dat"
    printf "label" > tf; printf "label" > rf
    for (i = 1; i <= na; i++) { printf "\t%s", A[i] > tf; printf "\t%s", A[i] > rf }
    printf "\n" > tf; printf "\n" > rf
    nranges = 0
    for (c = 1; c <= nc; c++) {
        m = C_m[c, 1]
        stats(c SUBSEP norm SUBSEP m); nv_norm = S_med
        printf "%s", C_lab[c] > tf
        printf "%s", C_lab[c] > rf
        for (i = 1; i <= na; i++) {
            stats(c SUBSEP A[i] SUBSEP m)
            r = cost_ratio(m, S_med, nv_norm)   # cost of A[i] relative to norm
            printf "\t%s", (r == "" ? "?" : sprintf("%.4g", r)) > tf
            rss_stats(c, A[i])
            printf "\t%s", (S_med == "" ? "?" : sprintf("%.4g", S_med)) > rf
        }
        printf "\n" > tf; printf "\n" > rf
        if (C_grp[c] ~ /^scaling:/) {
            split(C_grp[c], g, ":")
            if (!(g[2] in range_idx)) {
                range_idx[g[2]] = ++nranges
                range_name[nranges] = g[2]
                sf = OUT "/scaling_" nranges ".dat"
                printf "threads" > sf
                for (i = 1; i <= na; i++) printf "\t%s", A[i] > sf
                printf "\n" > sf
            }
            sf = OUT "/scaling_" range_idx[g[2]] ".dat"
            printf "%s", g[3] > sf
            for (i = 1; i <= na; i++) {
                stats(c SUBSEP A[i] SUBSEP m)
                printf "\t%s", (S_med == "" ? "?" : sprintf("%.4g", S_med)) > sf
            }
            printf "\n" > sf
        }
    }
    close(tf); close(rf)
    ix = OUT "/scaling_ranges.txt"
    printf "" > ix
    for (k2 = 1; k2 <= nranges; k2++) {
        printf "%d\t%s\n", k2, range_name[k2] > ix
        close(OUT "/scaling_" k2 ".dat")
    }
    close(ix)
}
