"""A desktop program that a web page can see and steer: a Tkinter window
with a counter and a text field, shown live in `www/index.html`, whose "+1"
button changes the program's state.

    python examples/desktop_app.py          # then open http://127.0.0.1:8000/

The program publishes its state on topic "state" at every change. The page
publishes to topic "commands" with the cookie the hub hands the pages it
serves (`page_publishes`): no other topic, no other site. A thread reads
"commands" (`hub.subscribe`) and hands each to Tkinter through a queue that
the Tk thread polls with `after` (Tkinter is touched only from its own
thread). Anyone who can open the page can press the button: the hub listens
on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import tkinter as tk
from pathlib import Path

from ssehub import BackgroundHub

__all__ = ("main",)

WWW = Path(__file__).resolve().with_name("www")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="port to serve the page on")
    args = parser.parse_args(argv)

    root = tk.Tk()
    root.title("ssehub desktop app")
    root.geometry("+0+0")
    counter = tk.IntVar(value=0)
    text = tk.StringVar(value="hello")
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()

    with BackgroundHub(args.port, page=WWW, page_publishes=("commands",)) as hub:

        def publish_state(*_: object) -> None:
            state = json.dumps({"counter": counter.get(), "text": text.get()})
            hub.publish("state", state)
            print("state", state, flush=True)

        def listen() -> None:  # a plain thread: never touches Tkinter
            with hub.subscribe("commands") as events:
                for event in events:
                    commands.put(event.data)

        def poll() -> None:  # on the Tk thread
            while True:
                try:
                    command = commands.get_nowait()
                except queue.Empty:
                    break
                if command == "increment":
                    counter.set(counter.get() + 1)
            root.after(50, poll)

        tk.Label(root, text="counter", font=("TkDefaultFont", 14)).grid(row=0, column=0, padx=8)
        tk.Label(root, textvariable=counter, font=("TkDefaultFont", 24), width=4).grid(
            row=0, column=1, pady=8
        )
        tk.Button(root, text="+1", command=lambda: counter.set(counter.get() + 1)).grid(
            row=0, column=2, padx=8
        )
        entry = tk.Entry(root, textvariable=text, width=30)
        entry.grid(row=1, column=0, columnspan=3, padx=8, pady=8)
        entry.focus_set()
        entry.icursor(tk.END)
        counter.trace_add("write", publish_state)
        text.trace_add("write", publish_state)

        listener = threading.Thread(target=listen, name="commands", daemon=True)
        listener.start()
        publish_state()
        print(f"open {hub.url}/ in a browser", flush=True)
        root.after(50, poll)
        try:
            root.mainloop()
        except KeyboardInterrupt:
            pass
    listener.join(5.0)  # the hub stopped: its subscription ended
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
