"""Which cache-maint is this: the version, from the package's metadata."""

import importlib.metadata

from tests.support import processes

VERSION = importlib.metadata.version('cache-maint')


def test_every_command_prints_its_version():
    for script in ('cache-maint', 'cache-maint-manage', 'cache-maint-status'):
        result = processes.run_script(script, ['--version'])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == VERSION


def test_the_start_up_line_names_the_version(daemons):
    daemon = daemons().start()
    processes.wait_for(
        lambda: daemon.log_lines('cache-maint %s is maintaining' % VERSION),
        'the start-up line, with the version')
