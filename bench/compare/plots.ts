/**
 * The bench's plots: vega-lite specs compiled to vega and rendered headless to SVG
 * (`vega.View(...).toSVG()` needs no browser and no canvas).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';

export interface Bar {
  path: string;
  group: string;
  value: number;
}

async function render(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Horizontal bars, one row per path, coloured by group, in the given order. */
export function barChart(title: string, unit: string, bars: Bar[]): Promise<string> {
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 520,
    data: { values: bars },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'path', type: 'nominal', sort: null, title: null, axis: { labelLimit: 320 } },
      x: { field: 'value', type: 'quantitative', title: unit },
      color: { field: 'group', type: 'nominal', title: null, legend: { orient: 'bottom' } },
    },
  });
}

export interface Point {
  series: string;
  x: number;
  y: number;
}

/** Lines with points, one per series (e.g. execs/s against concurrency). */
export function lineChart(title: string, xTitle: string, yTitle: string, points: Point[]): Promise<string> {
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 420,
    height: 240,
    data: { values: points },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: { field: 'x', type: 'ordinal', title: xTitle },
      y: { field: 'y', type: 'quantitative', title: yTitle },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } },
    },
  });
}
