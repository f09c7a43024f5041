"""The configuration files a ConfigOpts read, as they are written.

oslo.config reports a bad value with its own internals and ignores an option
it does not know. To name the file, the option and the value as the operator
wrote them, the files are read again here, with oslo.config's own parser.
"""

import glob
import os
import shlex

from oslo_config import cfg


def paths(conf):
    """The files ``conf`` was read from, in the order it read them."""
    found = [os.path.abspath(path) for path in conf.config_file or ()
             if os.path.isfile(path)]
    for directory in conf.config_dir or ():
        found += paths_in(directory)
    return found


def as_arguments(conf):
    """The --config-file and --config-dir options given, to repeat them.

    Shell-quoted, each followed by a space: a command told to the operator
    names the same files as the one that told it.
    """
    args = ['--config-file %s' % shlex.quote(path)
            for path in conf.config_file or ()]
    args += ['--config-dir %s' % shlex.quote(path)
             for path in conf.config_dir or ()]
    return ''.join(arg + ' ' for arg in args)


def paths_in(directory):
    """The files of a ``--config-dir``, in the order oslo.config reads them."""
    return sorted(glob.glob(os.path.join(directory, '*.conf')))


def contents(conf):
    """{path: bytes} of the files ``conf`` reads, to tell if they changed."""
    found = {}
    for path in paths(conf):
        try:
            with open(path, 'rb') as f:
                found[path] = f.read()
        except OSError as e:
            found[path] = e.errno
    return found


def parse(path):
    """``{section: {option: [raw value, ...]}}`` of one file; {} if unreadable.

    oslo.config itself has read it already and reported a file it could not
    parse.
    """
    sections = {}
    try:
        cfg.ConfigParser(path, sections).parse()
    except (OSError, cfg.ParseError):
        return {}
    return sections


def normalized(name):
    """An option name as oslo.config matches it (dashes are underscores)."""
    return name.replace('-', '_')


def find(conf, group, name):
    """(path, raw value) of the last file that sets ``[group] name``.

    None if no file sets it (a default, or the command line).
    """
    return find_in(paths(conf), group, name)


def find_in(files, group, name):
    """As find(), in the given files."""
    found = None
    for path in files:
        for option, values in parse(path).get(group, {}).items():
            if normalized(option) == name:
                found = path, values[-1]
    return found
