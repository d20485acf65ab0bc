import { from } from 'dromedary';

// Runs on one replica only: the member that leads lock1. See README "Clustered singleton routes".
from('master:lock1:timer:clock').log('Hello World!');
