// The page's small helpers: find an element, make one, format numbers and bytes for people.
import { humanBytes } from '/qkv/index.js';

/** The element `sel` names; the page is static, so a missing one is a bug in the page. */
export function $<T extends HTMLElement = HTMLElement>(sel: string): T {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`the page has no ${sel}`);
  return e;
}

type Props<K extends keyof HTMLElementTagNameMap> = Partial<Omit<HTMLElementTagNameMap[K], 'style'>> & { style?: string };

/** A new element with properties (style as CSS text) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props<K> = {}, ...children: (Node | string)[]):
  HTMLElementTagNameMap[K] {
  const { style, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (style) e.style.cssText = style; // through the CSSOM: the page's content security policy refuses style attributes
  e.append(...children);
  return e;
}

/** A number for reading: integers as they are, small and large ones in exponent form, else 3–4 digits. */
export const fmt = (x: number): string => (Math.abs(x) >= 1e5 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2)
  : Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) < 1 ? 4 : 3));

/** A measured value with its unit: bytes as KiB/MiB/GiB, never 4.36e+9. */
export const withUnit = (x: number, unit?: string): string => (unit === 'bytes' ? humanBytes(x) : `${fmt(x)}${unit ? ` ${unit}` : ''}`);

/** The status line. */
export function status(text: string): void { $('#status').textContent = text; }

/** Lets the page paint (a status line) before a long computation. */
export const paint = () => new Promise((r) => setTimeout(r, 10));

/** The number in an input, or `fallback` when it is empty or not a number. */
export const numberIn = (sel: string, fallback: number): number => {
  const v = Number($<HTMLInputElement>(sel).value);
  return Number.isFinite(v) && $<HTMLInputElement>(sel).value !== '' ? v : fallback;
};
