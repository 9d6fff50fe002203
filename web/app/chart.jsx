// A live uPlot chart: made once, given new data on each render. The figure carries
// `data-points` (the points drawn so far), which tests and `m2mpay bench ui` watch: it
// changes only after uPlot has the new point, so it marks the point as on screen.
// uPlot is most of the app's weight and only the dashboard draws: it is its own chunk,
// fetched when a page first asks for charts (`useCharts`), never by the other pages.
import { useEffect, useRef, useState } from "preact/hooks";

let uPlotClass = null; // once loaded, for every chart after the first
let uPlotLoading = null; // the one fetch in flight (null again after a failure: retried)

function loadUPlot() {
  uPlotLoading ??= import("uplot").then(
    (module) => (uPlotClass = module.default),
    (error) => {
      uPlotLoading = null;
      throw error;
    },
  );
  return uPlotLoading;
}

/** "loading", "loaded" or "failed": uPlot fetched for this page's charts. A page that
 * charts calls it early (its data and uPlot arrive together) and is ready once it is not
 * "loading". */
export function useCharts() {
  const [state, setState] = useState(uPlotClass !== null ? "loaded" : "loading");
  useEffect(() => {
    if (state !== "loading") return undefined;
    let mounted = true;
    loadUPlot().then(
      () => mounted && setState("loaded"),
      () => mounted && setState("failed"),
    );
    return () => {
      mounted = false;
    };
  }, []);
  return state;
}

const COLOURS = ["#0b5cad", "#a3161a", "#1a6b32"];

/** Chart amounts only: uPlot draws numbers, so an integer string becomes a float here,
 * for the geometry of a line, never for a figure a person reads (those stay BigInt). */
export function plotted(raw, decimals) {
  const scale = 10n ** BigInt(Math.max(decimals - 6, 0));
  return Number(BigInt(raw) / scale) / 10 ** Math.min(decimals, 6);
}

// The times drawn, from the data itself: one reading alone (or none) would otherwise
// stretch the axis over years or back to 1970; then a minute around it (or now).
function timeRange(u) {
  const times = u.data[0];
  if (times.length === 0) return [Date.now() / 1000 - 60, Date.now() / 1000];
  const first = times[0];
  const last = times[times.length - 1];
  return first === last ? [first - 30, last + 30] : [first, last];
}

/** `series`: [{label, scale}]; `data`: [times (s), ...one array per series]. */
export function LiveChart({ title, series, data, summary }) {
  const box = useRef(null);
  const plot = useRef(null);
  const figure = useRef(null);
  const latest = useRef(data); // what the plot is made with when uPlot arrives after data
  latest.current = data;
  const charts = useCharts();
  useEffect(() => {
    if (charts !== "loaded") return undefined;
    const scales = { x: { time: true, range: timeRange } };
    for (const s of series) scales[s.scale] = { auto: true };
    plot.current = new uPlotClass(
      {
        width: 560,
        height: 180,
        legend: { show: false }, // the figure's caption says the latest values in words
        scales,
        series: [{}, ...series.map((s, i) => ({ label: s.label, scale: s.scale, stroke: COLOURS[i % 3], width: 2 }))],
        axes: [
          {},
          ...series.map((s, i) => ({ scale: s.scale, side: i === 0 ? 3 : 1, label: s.label, grid: { show: i === 0 } })),
        ],
      },
      latest.current,
      box.current,
    );
    figure.current?.setAttribute("data-points", String(latest.current[0].length));
    return () => plot.current?.destroy();
  }, [charts]);
  useEffect(() => {
    if (plot.current === null) return;
    plot.current.setData(data);
    figure.current?.setAttribute("data-points", String(data[0].length));
  }, [data]);
  return (
    <figure class="chart" ref={figure} data-points="0">
      <div ref={box} role="img" aria-label={`${title}: ${summary}`} />
      {charts === "failed" ? <p role="alert">The chart could not be loaded; reload the page to try again.</p> : null}
      <figcaption>
        {title}: {summary}
      </figcaption>
    </figure>
  );
}
