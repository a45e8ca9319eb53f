// Names of the objects the Application controller creates (pods, source ConfigMaps, token Secrets).
import { dnsStem, podTokenSecretName, shortHash } from "../../../protocol/index.js";

/** Length of the random part of pod names (as the apiserver's generateName). */
export const POD_SUFFIX_LENGTH = 5;
const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
export function randomPodSuffix(random: () => number = Math.random): string {
  let s = "";
  for (let i = 0; i < POD_SUFFIX_LENGTH; i++) s += SUFFIX_ALPHABET[Math.floor(random() * SUFFIX_ALPHABET.length)];
  return s;
}

/**
 * `<app>-<fn>-` cut so that the whole pod name (with its suffix) stays a 63-character DNS label;
 * the function label, not the name, says which function a pod serves.
 */
export function podNamePrefix(app: string, fn: string): string {
  const max = 63 - POD_SUFFIX_LENGTH - 1;
  const a = dnsStem(app) || "app";
  const f = dnsStem(fn) || "fn";
  let stem = `${a}-${f}`;
  if (stem.length > max) {
    // Keep some of both; a short hash keeps long distinct pairs apart.
    const h = shortHash(`${app}/${fn}`, 6);
    const room = max - h.length - 2;
    const fa = Math.min(a.length, Math.max(Math.ceil(room / 2), room - f.length));
    stem = `${a.slice(0, fa).replace(/-$/, "")}-${f.slice(0, room - fa).replace(/-$/, "")}-${h}`;
  }
  return `${stem}-`;
}

/** Name of the content-addressed ConfigMap holding an Application's inline source. */
export function sourceConfigMapName(app: string, sourceHash: string): string {
  return `${app.slice(0, 253 - 8 - sourceHash.length)}-source-${sourceHash}`;
}

/** Name of the per-pod token Secret (a fixed suffix that admission and validation refuse in `secrets`). */
export const podSecretName = (pod: string): string => podTokenSecretName(pod);
