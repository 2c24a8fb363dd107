"""The one list of user commands: it drives the key bindings, the footer, the help screen and the palette."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    """One user command: its keys, the action they run, and how the footer and help name it."""

    keys: tuple[str, ...]  # Textual key names; each becomes a binding
    action: str  # app action, without the "action_" prefix; "{key}" is replaced by the key
    label: str  # short footer text
    description: str  # help screen and command palette text
    key_display: str  # how the help screen writes the keys
    footer: bool = False  # shown in the footer (space there is short at 80 columns)
    palette: bool = True  # offered in the command palette

    def action_for(self, key: str) -> str:
        return self.action.replace("{key}", key)

    def bindings(self) -> list[Binding]:
        return [
            Binding(
                key,
                self.action_for(key),
                self.label,
                show=self.footer and i == 0,
                key_display=self.key_display if i == 0 else None,
            )
            for i, key in enumerate(self.keys)
        ]


COMMANDS: tuple[Command, ...] = (
    # Quit, help and the palette come first so the footer never cuts them off on a narrow terminal.
    # ctrl+c and ctrl+q quit too (CryptoApp.action_help_quit): a terminal user's reflex.
    Command(
        ("q",),
        "quit",
        "Quit",
        "Quit (also ctrl+c, ctrl+q; the engine stops in the background)",
        "q",
        footer=True,
    ),
    Command(("question_mark",), "help", "Help", "Show the keys and what they do", "?", footer=True),
    Command(
        ("ctrl+p",),
        "command_palette",
        "Palette",
        "Open the command palette",
        "^p",
        footer=True,
        palette=False,
    ),
    Command(("down", "j"), "next_coin", "Next", "Select the next coin", "↓ j"),
    Command(("up", "k"), "prev_coin", "Prev", "Select the previous coin", "↑ k"),
    Command(("right_square_bracket",), "next_coin", "Next", "Next coin", "]", palette=False),
    Command(("left_square_bracket",), "prev_coin", "Prev", "Previous coin", "[", palette=False),
    Command(
        tuple(str(i) for i in range(1, 10)),
        "jump({key})",
        "Jump",
        "Jump to coin 1-9",
        "1-9",
        palette=False,
    ),
    Command(("a",), "add_coin", "Add", "Add a coin (search by name or symbol)", "a", footer=True),
    Command(
        ("x",), "remove_coin", "Remove", "Remove the selected coin (asks first)", "x", footer=True
    ),
    Command(("w",), "cycle_window", "Window", "Chart window: 1h / 6h / 24h", "w", footer=True),
    Command(
        ("h",),
        "cycle_horizon",
        "Horizon",
        "Forecast horizon: 1 / 5 / 15 / 60 min",
        "h",
        footer=True,
    ),
    Command(
        ("plus", "equals_sign"),
        "zoom(1)",
        "Zoom in",
        "Chart: zoom in on time (or the mouse wheel)",
        "+",
    ),
    Command(
        ("minus",), "zoom(-1)", "Zoom out", "Chart: zoom out in time (or the mouse wheel)", "-"
    ),
    Command(("left", "comma"), "pan(-1)", "Back", "Chart: pan back in time", "← ,"),
    Command(("right", "full_stop"), "pan(1)", "Later", "Chart: pan towards now", "→ ."),
    Command(("0", "end"), "chart_now", "Now", "Chart: back to now (follows new minutes)", "0"),
    Command(("p",), "toggle_pause", "Pause", "Pause or resume training", "p", footer=True),
    Command(
        ("R",),
        "reset_model",
        "Reset",
        "Reset the selected coin's model (asks first)",
        "R",
        footer=True,
    ),
    Command(
        ("e",),
        "export",
        "Export",
        "Export the coin's bars and predictions to CSV",
        "e",
        footer=True,
    ),
    Command(
        ("A",),
        "alerts",
        "Alerts",
        "Price and surprise alerts for the selected coin",
        "A",
        footer=True,
    ),
    Command(
        ("H",), "holding", "Holding", "Enter, edit or remove your holding of the selected coin", "H"
    ),
    Command(("m",), "privacy", "Mask", "Hide or show every amount of your holdings (privacy)", "m"),
)


def all_bindings() -> list[Binding]:
    """The main screen's bindings, in the order of ``COMMANDS``."""
    return [b for cmd in COMMANDS for b in cmd.bindings()]


def palette_binding() -> Binding:
    """The app's own binding of the palette key: a priority binding (as Textual's default one is,
    which it replaces) that the footer shows in the palette command's place."""
    cmd = next(c for c in COMMANDS if c.action == "command_palette")
    return Binding(cmd.keys[0], cmd.action, cmd.label, key_display=cmd.key_display, priority=True)
