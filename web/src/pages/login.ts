import { ApiError, login } from "../api";
import { errorBox, h } from "../dom";

export function loginPage(onLoggedIn: () => Promise<void>): HTMLElement {
  const error = h("div", { class: "slot" });
  const user = h("input", { name: "user", id: "user", autocomplete: "username", required: true });
  const password = h("input", {
    name: "password",
    id: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "login card",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        error.replaceChildren();
        try {
          await login(user.value.trim(), password.value);
          await onLoggedIn();
        } catch (err) {
          const message =
            err instanceof ApiError && err.status === 401
              ? "Wrong user name or password."
              : err instanceof Error
                ? err.message
                : String(err);
          error.replaceChildren(errorBox(message));
          password.select();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", null, h("img", { src: "/favicon.svg", alt: "" }), "dlab"),
    h("p", { class: "muted" }, "Log in with your dlab user name and password."),
    h("label", { for: "user" }, "User name"),
    user,
    h("label", { for: "password" }, "Password"),
    password,
    error,
    button,
  );
  queueMicrotask(() => user.focus());
  return h("div", { class: "login-wrap" }, form);
}
