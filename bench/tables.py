"""Plain-text tables for the benchmarks' reports (reStructuredText grids)."""


def fmt(value, spec='%.3f'):
    """``value`` formatted by ``spec``, or ``-`` when there is none."""
    return '-' if value is None else spec % value


def grid(header, lines):
    """A simple reStructuredText table of ``header`` and rows of strings."""
    lines = [tuple(header)] + [tuple(line) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = '  '.join('=' * w for w in widths)

    def row(cells):
        return '  '.join(c.ljust(w) for c, w in zip(cells, widths))

    return '\n'.join([rule, row(lines[0]), rule]
                     + [row(line) for line in lines[1:]] + [rule])
