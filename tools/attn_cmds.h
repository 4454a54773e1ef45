/* attn_cmds.h - entry points of the `attn` subcommands (argc/argv start at the subcommand
 * name). Each returns the process exit status: 0 success, 1 failure/mismatch, 2 usage error. */
#ifndef ATTN_CMDS_H_
#define ATTN_CMDS_H_

int attn_cmd_conform(int argc, char **argv);
int attn_cmd_run(int argc, char **argv);
int attn_cmd_compare(int argc, char **argv);
int attn_cmd_bench(int argc, char **argv);
int attn_cmd_schedule(int argc, char **argv);
int attn_cmd_devices(int argc, char **argv);
int attn_cmd_show(int argc, char **argv);
int attn_cmd_decode(int argc, char **argv);
int attn_cmd_data(int argc, char **argv);
int attn_cmd_infer(int argc, char **argv);
int attn_cmd_train(int argc, char **argv);
int attn_cmd_explain(int argc, char **argv);
int attn_cmd_transfer(int argc, char **argv);

#endif /* ATTN_CMDS_H_ */
