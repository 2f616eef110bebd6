document.getElementById("audit")!.textContent = "audit";
