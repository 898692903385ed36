"""Ctrl-C in the lesson runner: one line, and no half-written files (`utils.lessons`, `utils.copies`).

`engine` is the papermill engine the runner executes lessons with: papermill's own nbclient engine, but an
interrupted lesson stops quietly, its kernel shut down in order. `held` keeps Ctrl-C off a block that must run
whole, such as writing an executed copy and its page.
"""

import asyncio
import contextlib
import functools
import signal
import threading
import warnings

PATIENCE = 10  # seconds an interrupted lesson's kernel gets to stop its cell before it is shut down at once


@contextlib.contextmanager
def held():
    """Ctrl-C inside the block takes effect when it ends (KeyboardInterrupt then), so the block runs whole."""
    if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield  # only the main thread gets Ctrl-C, and a command that ignores it has nothing to hold off
        return
    pressed = []
    signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


@functools.cache
def engine():
    """Registers with papermill, once, the engine the runner executes lessons with, and returns its name.

    It is papermill's nbclient engine, but Ctrl-C ends a run quietly: the kernel runs in a session of its own
    (jupyter_client), so Ctrl-C reaches only the runner, and nbclient's own clean-up would interrupt the kernel
    and ask it to shut down at the same moment; the kernel then fails to answer on a closed socket and prints a
    `ZMQError` traceback, and nbclient's tasks still waiting for the cell report a dead kernel. Here the kernel
    is interrupted first (as Jupyter's stop button does) and gets `PATIENCE` seconds to stop the cell, running
    its `finally:` blocks; nbclient's waiting tasks are finished, and only then does nbclient shut the kernel
    down, at once (`shutdown_kernel = "immediate"`): a graceful shutdown races ipykernel's own closing of its
    sockets, and ipykernel 7.4.0 can still print that `ZMQError` traceback while it handles the request.
    """
    from jupyter_core.utils import ensure_async, ensure_event_loop
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class Client(PapermillNotebookClient):
        @contextlib.contextmanager
        def setup_kernel(self, **kwargs):
            try:
                with super().setup_kernel(**kwargs):  # shuts the kernel down when the block ends
                    try:
                        yield
                    except KeyboardInterrupt:
                        self.stop_interrupted_cell()
                        raise
            except KeyboardInterrupt:  # while the kernel was starting, or again while it shut down
                self.finish_tasks(ensure_event_loop())
                if self.km is not None and self.km.has_kernel:
                    self.shutdown_kernel = "immediate"
                    self._cleanup_kernel()
                raise

        def stop_interrupted_cell(self):
            loop = ensure_event_loop()
            self.finish_tasks(loop)  # nbclient's, waiting for the cell: nobody waits for them any more

            async def stop():
                await ensure_async(self.km.interrupt_kernel())
                # the kernel answers in turn: once it answers this, it has answered the interrupted cell
                asked = await ensure_async(self.kc.kernel_info())
                while (await ensure_async(self.kc.shell_channel.get_msg()))["parent_header"].get("msg_id") != asked:
                    pass

            if self.km is not None and self.km.has_kernel and self.kc is not None:
                try:
                    loop.run_until_complete(asyncio.wait_for(stop(), PATIENCE))
                except (KeyboardInterrupt, TimeoutError):  # Ctrl-C again, or the cell does not stop
                    self.finish_tasks(loop)
                self.shutdown_kernel = "immediate"  # its cell is over: a graceful shutdown could print a ZMQError

        @staticmethod
        def finish_tasks(loop):
            """Cancels the tasks still waiting in `loop` and collects how each ended, so that none is reported
            later ("Task exception was never retrieved", "Kernel died while waiting for execute reply."). A task,
            or a coroutine not yet a task, that Ctrl-C itself ended is over already: not reported either."""
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.set_exception_handler(lambda loop, context: None if context.get("message") == (
                "Task exception was never retrieved") else loop.default_exception_handler(context))
            warnings.filterwarnings("ignore", r"coroutine .* was never awaited", RuntimeWarning)

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = {key: value for key, value in kwargs.items()
                      if key not in ("input_path", "timeout", "startup_timeout")}
            return Client(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                          kernel_name=kernel_name, log=logger, log_output=log_output, stdout_file=stdout_file,
                          stderr_file=stderr_file, **kwargs).execute()

    papermill_engines.register("course-kit", Engine)
    return "course-kit"
