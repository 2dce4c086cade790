// Logs go to stderr so that a command's output on stdout stays clean for pipes.
import { createConsola } from "consola";

export const logger = createConsola({ stdout: process.stderr, stderr: process.stderr });
