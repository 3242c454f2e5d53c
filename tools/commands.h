/*
 * commands.h: `vsearch` subcommands that live outside tools/vsearch.c.
 *
 * Each takes the arguments after the subcommand's name (argv[0] is the
 * first of them, e.g. DIR) and returns the process exit status: 0 on
 * success, 1 when the work failed, 2 for a usage error.  Errors are printed
 * to stderr; results to stdout.
 */
#ifndef VS_TOOLS_COMMANDS_H
#define VS_TOOLS_COMMANDS_H

/* `vsearch query DIR NAME ...`: vector and text search (tools/cmd_query.c). */
int cmd_query(int argc, char **argv);

/* `vsearch build DIR NAME [--index SPEC] [--threads N]`: rebuild a
 * collection's vector index from the stored points (tools/cmd_query.c). */
int cmd_build(int argc, char **argv);

/* `vsearch bench ann ...`: recall, QPS, latency and build cost of vsearch
 * beside raw FAISS and hnswlib on the same data (tools/cmd_bench.c). */
int cmd_bench(int argc, char **argv);

/* `vsearch bench text ...`: BM25 quality, indexing and query speed of
 * vsearch beside Xapian on the same documents (tools/cmd_bench_text.c). */
int cmd_bench_text(int argc, char **argv);

/* `vsearch serve DIR ...`: the MessagePack-RPC server (tools/cmd_serve.c,
 * server/). */
int cmd_serve(int argc, char **argv);

/* `vsearch demo-data DIR [--data DIR]`: load the collections `make run`
 * serves (Fashion-MNIST vectors, SciFact text), once (cmd_demo_data.c). */
int cmd_demo_data(int argc, char **argv);

/* `vsearch bench server ...`: ping/s, search queries/s and latency of
 * `vsearch serve` under pipelined connections on loopback, beside the
 * in-process vs_search() rate (tools/cmd_bench_server.c). */
int cmd_bench_server(int argc, char **argv);

#endif /* VS_TOOLS_COMMANDS_H */
