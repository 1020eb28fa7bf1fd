// Line charts with uPlot: a metric's curve (or several jobs' curves of one metric) against step
// or wall time, with TensorBoard-style exponential smoothing.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type XAxis = "step" | "time";
export interface Curve {
  label: string;
  points: [number, number, number][]; // [step, unix seconds, value]
}

const COLORS = ["#3b6ef5", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#f08c00",
  "#5c940d"];

// The debiased exponential moving average TensorBoard draws (weight 0: the raw values).
export function smooth(values: number[], weight: number): number[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

// The curves on one x axis: the union of their x values, each curve null where it has no point.
export function align(curves: Curve[], x: XAxis, weight: number): uPlot.AlignedData {
  const xi = x === "step" ? 0 : 1;
  const xs = [...new Set(curves.flatMap((c) => c.points.map((p) => p[xi])))].sort((a, b) => a - b);
  const index = new Map(xs.map((v, i) => [v, i]));
  const ys = curves.map((c) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    const smoothed = smooth(c.points.map((p) => p[2]), weight);
    c.points.forEach((p, i) => (col[index.get(p[xi])!] = smoothed[i]));
    return col;
  });
  return [xs, ...ys] as uPlot.AlignedData;
}

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export class LineChart {
  private plot: uPlot | null = null;
  private readonly resize: ResizeObserver;

  constructor(
    private readonly el: HTMLElement,
    private readonly title: string,
    private readonly height = 220,
  ) {
    this.resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height });
    });
    this.resize.observe(el);
  }

  private width(): number {
    return Math.max(200, this.el.clientWidth || 400);
  }

  draw(curves: Curve[], x: XAxis, weight: number, yLabel = ""): void {
    const data = align(curves, x, weight);
    const key = `${x}|${curves.map((c) => c.label).join("|")}`;
    if (this.plot && this.plot.root.dataset.key === key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    const grid = { stroke: css("--grid"), width: 1 };
    const axis = { stroke: css("--muted"), grid, ticks: grid };
    this.plot = new uPlot(
      {
        title: this.title,
        width: this.width(),
        height: this.height,
        scales: { x: { time: x === "time" } },
        axes: [{ ...axis, label: x === "step" ? "step" : "" }, { ...axis, label: yLabel, size: 60 }],
        series: [
          { label: x },
          ...curves.map((c, i) => ({
            label: c.label,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            spanGaps: true,
            points: { show: false },
          })),
        ],
        legend: { show: curves.length > 1 || true },
        cursor: { drag: { x: true, y: false } },
      },
      data,
      this.el,
    );
    this.plot.root.dataset.key = key;
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}
