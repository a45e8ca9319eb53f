// `npm run bench -- --compare <rev>`: the operator of another revision, checked out as a detached
// git worktree in /tmp with this tree's node_modules linked in, so it starts the same way as the
// current tree's operator (node --import tsx <root>/operator/src/main.ts).
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../test/support/kube.js";

export interface BaselineTree {
  /** The revision as given on the command line. */
  rev: string;
  commit: string;
  short: string;
  /** The worktree: the operator is started from <root>/operator/src/main.ts. */
  root: string;
  /** Removes the worktree (idempotent, synchronous so a signal handler can call it). */
  remove(): void;
}

const git = (args: string[]) =>
  execFileSync("git", ["-C", repoRoot, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/** Unlinks the node_modules link first, so nothing can reach this tree's node_modules through it. */
function unlinkNodeModules(root: string): void {
  const link = join(root, "node_modules");
  try {
    if (lstatSync(link).isSymbolicLink()) unlinkSync(link);
  } catch {
    // not there
  }
}

function removeWorktree(root: string): void {
  unlinkNodeModules(root);
  try {
    git(["worktree", "remove", "--force", root]);
  } catch {
    // not a registered worktree (any more): remove what is left
  }
  if (existsSync(root)) {
    unlinkNodeModules(root);
    rmSync(root, { recursive: true, force: true });
  }
  git(["worktree", "prune"]);
}

export function checkoutBaseline(rev: string): BaselineTree {
  let commit: string;
  try {
    commit = git(["rev-parse", "--verify", `${rev}^{commit}`]);
  } catch {
    throw new Error(`--compare ${rev}: not a commit of this repository`);
  }
  const short = git(["rev-parse", "--short", commit]);
  const root = `/tmp/trellis-bench-${short}`;
  removeWorktree(root); // left by an interrupted run
  git(["worktree", "add", "--detach", root, commit]);
  symlinkSync(join(repoRoot, "node_modules"), join(root, "node_modules"), "dir");
  let removed = false;
  const tree: BaselineTree = {
    rev,
    commit,
    short,
    root,
    remove: () => {
      if (removed) return;
      removed = true;
      try {
        removeWorktree(root);
      } catch (e) {
        console.error(`could not remove the worktree ${root}: ${String(e)}; run: git worktree remove --force ${root}`);
      }
    },
  };
  if (!existsSync(join(root, "operator/src/main.ts"))) {
    tree.remove();
    throw new Error(`--compare ${rev}: ${short} has no operator/src/main.ts to start`);
  }
  return tree;
}
